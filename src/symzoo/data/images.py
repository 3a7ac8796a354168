"""Image sets: building them (digits, CIFAR-10-GS), and the ``.npz`` format every later stage reads.

An image set is an ``.npz`` with exactly the keys ``x_train y_train x_val y_val x_test y_test``:
``x_*`` float32 NCHW images, ``y_*`` int64 class labels, with the same N within each split pair.
"""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symzoo.atomic import atomic_path
from symzoo.data.download import fetch

SPLITS = ("train", "val", "test")
KEYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y"))

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR10_DIR = "cifar-10-batches-py"
_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_TEST = "test_batch"
_CIFAR10_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class ImageSet:
    """The six arrays of an image set (see the module docstring)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)`` of the split ``name`` ("train", "val" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    @property
    def num_classes(self) -> int:
        """Number of classes: the largest label over all splits, plus one."""
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, (C, H, W)."""
        return tuple(self.x_train.shape[1:])


def build_image_set(options: Mapping, cache_dir: Path) -> dict[str, np.ndarray]:
    """Build the arrays of the image set described by ``options`` (one entry of the config's ``datasets``).

    Missing options take the config schema's defaults. Downloads (CIFAR-10) are cached in ``cache_dir``.
    """
    source = options.get("source")
    if source == "digits":
        return _digits(options.get("fractions", (0.6, 0.2, 0.2)), options.get("seed", 0))
    if source == "cifar10":
        return _cifar10_gs(options, Path(cache_dir))
    raise ValueError(f"unknown image set source {source!r}; expected 'digits' or 'cifar10'")


def save_image_set(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Validate ``arrays`` and write them atomically as an uncompressed ``.npz`` at ``path``."""
    _validate(arrays, f"image set for {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no suffix
        np.savez(f, **{key: arrays[key] for key in KEYS})


def load_image_set(path: Path) -> ImageSet:
    """Read and validate the image set at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image set {path} not found")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    _validate(arrays, str(path))
    return ImageSet(**{key: arrays[key] for key in KEYS})


def _validate(arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Raise ValueError naming ``where`` and the offending key unless ``arrays`` is a valid image set."""
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    extra = sorted(set(arrays) - set(KEYS))
    if extra:
        raise ValueError(f"{where}: unexpected key(s) {', '.join(extra)}")
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        for key, array, dtype, ndim in ((f"x_{split}", x, np.float32, 4), (f"y_{split}", y, np.int64, 1)):
            if not isinstance(array, np.ndarray) or array.dtype != dtype:
                raise ValueError(f"{where}: {key} must be a {np.dtype(dtype)} array, got {_describe(array)}")
            if array.ndim != ndim:
                raise ValueError(f"{where}: {key} must have {ndim} dimensions, got shape {array.shape}")
        if len(x) != len(y):
            raise ValueError(f"{where}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels")
    shapes = {arrays[f"x_{split}"].shape[1:] for split in SPLITS}
    if len(shapes) != 1:
        raise ValueError(f"{where}: x_train, x_val and x_test differ in image shape: {sorted(shapes)}")


def _describe(value: object) -> str:
    return f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__


def _digits(fractions: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits in [-1, 1], split by ``fractions`` (stratified, deterministic in seed)."""
    from sklearn.datasets import load_digits  # heavy; needed only here
    from sklearn.model_selection import train_test_split

    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"digits: fractions must be 3 positive numbers summing to 1, got {list(fractions)}")
    digits = load_digits()
    x = (digits.images / 16 * 2 - 1).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    f_train, f_val, f_test = fractions
    index = np.arange(len(y))
    train, rest = train_test_split(index, train_size=f_train, stratify=y, random_state=seed)
    val, test = train_test_split(rest, test_size=f_test / (f_val + f_test), stratify=y[rest], random_state=seed)
    arrays = {}
    for split, part in zip(SPLITS, (train, val, test), strict=True):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[part], y[part]
    return arrays


def _cifar10_gs(options: Mapping, cache_dir: Path) -> dict[str, np.ndarray]:
    """CIFAR-10-GS from the official python archive: 50,000 train; the test batch halved into val / test."""
    resize = options.get("resize")
    if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int) or resize < 1):
        raise ValueError(f"cifar10: resize must be a positive integer or null, got {resize!r}")
    archive = fetch(
        options.get("url", CIFAR10_URL),
        cache_dir / CIFAR10_ARCHIVE,
        md5=options.get("md5", CIFAR10_MD5),
        desc="CIFAR-10",
    )
    batches = _read_cifar10(archive)
    x_train = np.concatenate([batches[name][0] for name in _CIFAR10_TRAIN])
    y_train = np.concatenate([batches[name][1] for name in _CIFAR10_TRAIN])
    x_rest, y_rest = batches[_CIFAR10_TEST]
    half = len(y_rest) // 2
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_val": x_rest[:half],
        "y_val": y_rest[:half],
        "x_test": x_rest[half:],
        "y_test": y_rest[half:],
    }
    if resize is not None and resize != _CIFAR10_SHAPE[1]:
        arrays.update({f"x_{split}": _resize(arrays[f"x_{split}"], resize) for split in SPLITS})
    return arrays


def _read_cifar10(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Grayscale images (N, 1, 32, 32) in [-1, 1] and int64 labels of each batch, in one pass over the tar.

    The batches are pickles, so only archives whose checksum was verified should be read.
    """
    wanted = {f"{_CIFAR10_DIR}/{name}": name for name in (*_CIFAR10_TRAIN, _CIFAR10_TEST)}
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:  # stream order: no backward seeks in the gzip stream
            name = wanted.get(member.name)
            if name is None or not member.isfile():
                continue
            with tar.extractfile(member) as f:
                batch = pickle.load(f, encoding="bytes")
            try:
                data, labels = batch[b"data"], batch[b"labels"]
            except KeyError as err:
                raise ValueError(f"{archive}: {member.name} has no key {err.args[0]!r}") from None
            batches[name] = (
                _grayscale(np.asarray(data, dtype=np.uint8), f"{archive}: {member.name}"),
                np.asarray(labels, dtype=np.int64),
            )
    missing = sorted(set(wanted.values()) - set(batches))
    if missing:
        raise ValueError(f"{archive}: missing {', '.join(f'{_CIFAR10_DIR}/{name}' for name in missing)}")
    return batches


def _grayscale(data: np.ndarray, where: str) -> np.ndarray:
    """(N, 3072) uint8 RGB planes -> (N, 1, 32, 32) float32: /255, mapped to [-1, 1], mean over RGB."""
    if data.ndim != 2 or data.shape[1] != np.prod(_CIFAR10_SHAPE):
        raise ValueError(f"{where}: expected data of shape (N, {np.prod(_CIFAR10_SHAPE)}), got {data.shape}")
    rgb = data.reshape(-1, *_CIFAR10_SHAPE).astype(np.float32) / 255 * 2 - 1
    return rgb.mean(axis=1, keepdims=True, dtype=np.float32)


def _resize(x: np.ndarray, side: int) -> np.ndarray:
    """Resize NCHW images to ``side`` x ``side`` (bilinear, antialiased)."""
    import torch  # heavy; needed only here
    import torch.nn.functional as F

    resized = F.interpolate(
        torch.from_numpy(x), size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.numpy().astype(np.float32, copy=False)
