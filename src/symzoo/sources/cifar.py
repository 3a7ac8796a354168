"""CIFAR-10-GS: the official CIFAR-10 python archive (``cifar-10-python.tar.gz``) as a grayscale image set.

Each image is divided by 255, mapped to [-1, 1] and averaged over its RGB planes; optionally it is resized
(bilinear, antialiased). The five training batches (50,000 images, in order) are the train split; the test
batch is halved into val (its first half) and test (its second half).
"""

from __future__ import annotations

import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symzoo.data.download import download
from symzoo.data.images import SPLITS, ImageSet

ARCHIVE = "cifar-10-python.tar.gz"
"""The archive's file name in the download cache."""

_FOLDER = "cifar-10-batches-py"
_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST = "test_batch"
_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class Cifar10Settings:
    """Where the archive comes from (``url``, a URL or a local path, with its published ``md5``; None: the sha256 of
    the first download is recorded and checked from then on) and the side length ``resize`` of the (square)
    resized images; None keeps 32."""

    url: str
    md5: str | None
    resize: int | None


def cifar10_gs_image_set(settings: Cifar10Settings, cache_dir: Path) -> ImageSet:
    """CIFAR-10-GS from the archive, downloaded (or reused) and verified as ``cache_dir/cifar-10-python.tar.gz``."""
    dest = Path(cache_dir) / ARCHIVE
    if settings.md5 is None:
        archive = download(settings.url, dest, trust_on_first_use=True, desc="CIFAR-10").path
    else:
        archive = download(settings.url, dest, md5=settings.md5, desc="CIFAR-10").path
    batches = read_batches(archive)
    x_rest, y_rest = batches[_TEST]
    half = len(y_rest) // 2
    arrays = {
        "x_train": np.concatenate([batches[name][0] for name in _TRAIN]),
        "y_train": np.concatenate([batches[name][1] for name in _TRAIN]),
        "x_val": x_rest[:half],
        "y_val": y_rest[:half],
        "x_test": x_rest[half:],
        "y_test": y_rest[half:],
    }
    if settings.resize is not None and settings.resize != _SHAPE[1]:
        arrays.update({f"x_{split}": _resize(arrays[f"x_{split}"], settings.resize) for split in SPLITS})
    return ImageSet(**arrays)


def read_batches(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Grayscale images (N, 1, 32, 32) in [-1, 1] and int64 labels of each batch, in one pass over the tar.

    The batches are pickles, so only archives whose checksum was verified should be read.
    """
    try:
        batches = _read_batches(archive)
    except (EOFError, tarfile.TarError, zlib.error, OSError, pickle.UnpicklingError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(
            f"{archive}: corrupt or truncated CIFAR-10 archive ({type(err).__name__}: {err}); delete it to download "
            "it again"
        ) from err
    return batches


def _read_batches(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    wanted = {f"{_FOLDER}/{name}": name for name in (*_TRAIN, _TEST)}
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
        raise ValueError(f"{archive}: missing {', '.join(f'{_FOLDER}/{name}' for name in missing)}")
    return batches


def _grayscale(data: np.ndarray, where: str) -> np.ndarray:
    """(N, 3072) uint8 RGB planes -> (N, 1, 32, 32) float32: /255, mapped to [-1, 1], mean over RGB."""
    if data.ndim != 2 or data.shape[1] != np.prod(_SHAPE):
        raise ValueError(f"{where}: expected data of shape (N, {np.prod(_SHAPE)}), got {data.shape}")
    rgb = data.reshape(-1, *_SHAPE).astype(np.float32) / 255 * 2 - 1
    return rgb.mean(axis=1, keepdims=True, dtype=np.float32)


def _resize(x: np.ndarray, side: int) -> np.ndarray:
    """Resize NCHW images to ``side`` x ``side`` (bilinear, antialiased)."""
    import torch  # heavy; needed only here
    import torch.nn.functional as F

    resized = F.interpolate(
        torch.from_numpy(x), size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )
    return resized.numpy().astype(np.float32, copy=False)
