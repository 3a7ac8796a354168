"""The image-set format every stage reads: :class:`ImageSet` and its ``.npz`` file.

An image set is an ``.npz`` with exactly the keys ``x_train y_train x_val y_val x_test y_test``:
``x_*`` float32 NCHW images, ``y_*`` int64 class labels, with the same N within each split pair, and one image
shape for all three splits. The sources that build image sets live in :mod:`symzoo.sources`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symzoo.atomic import atomic_path

SPLITS = ("train", "val", "test")
KEYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y"))


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

    def arrays(self) -> dict[str, np.ndarray]:
        """The six arrays by their ``.npz`` key, in the file's order."""
        return {key: getattr(self, key) for key in KEYS}


@dataclass(frozen=True)
class SplitSettings:
    """How a bundled image set (the 8x8 digits, the 5,000 MNIST digits) is split: train / val / test ``fractions``
    (summing to 1), stratified by class, and the ``seed``."""

    fractions: tuple[float, float, float]
    seed: int


def stratified_split(x: np.ndarray, y: np.ndarray, settings: SplitSettings, where: str) -> ImageSet:
    """Images ``x`` with labels ``y`` split into train / val / test by ``settings.fractions``, stratified by class
    and deterministic in ``settings.seed`` (``where`` names the set in errors)."""
    from sklearn.model_selection import train_test_split  # heavy; needed only here

    fractions, seed = settings.fractions, settings.seed
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6:  # the schema checks each fraction, not their sum
        raise ValueError(f"{where}: fractions must be 3 positive numbers summing to 1, got {list(fractions)}")
    f_train, f_val, f_test = fractions
    index = np.arange(len(y))
    train, rest = train_test_split(index, train_size=f_train, stratify=y, random_state=seed)
    val, test = train_test_split(rest, test_size=f_test / (f_val + f_test), stratify=y[rest], random_state=seed)
    arrays = {}
    for split, part in zip(SPLITS, (train, val, test), strict=True):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[part], y[part]
    return ImageSet(**arrays)


def save_image_set(path: Path, images: ImageSet | Mapping[str, np.ndarray]) -> None:
    """Validate ``images`` (an :class:`ImageSet` or its arrays by key) and write them atomically as an
    uncompressed ``.npz`` at ``path``."""
    arrays = images.arrays() if isinstance(images, ImageSet) else images
    _validate(arrays, f"image set for {path}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no suffix
        np.savez(f, **{key: arrays[key] for key in KEYS})


def load_image_set(path: Path) -> ImageSet:
    """Read and validate the image set at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image set {path} not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"image set {path}: not an image-set .npz file ({type(err).__name__})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"image set {path}: a single .npy array, not an image-set .npz file")
    try:
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"image set {path}: corrupt .npz file ({err})") from None
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
