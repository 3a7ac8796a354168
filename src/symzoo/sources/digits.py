"""scikit-learn's bundled 8x8 digits (no download) as an image set, split deterministically."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symzoo.data.images import SPLITS, ImageSet


@dataclass(frozen=True)
class DigitsSettings:
    """How the 1,797 digits are split: train / val / test ``fractions`` (summing to 1), and the ``seed``."""

    fractions: tuple[float, float, float]
    seed: int


def digits_image_set(settings: DigitsSettings) -> ImageSet:
    """The digits as (N, 1, 8, 8) float32 images in [-1, 1] with int64 labels, split by ``settings.fractions``.

    The split is stratified by class and deterministic in ``settings.seed``.
    """
    from sklearn.datasets import load_digits  # heavy; needed only here
    from sklearn.model_selection import train_test_split

    fractions = settings.fractions
    if abs(sum(fractions) - 1) > 1e-6:  # the schema checks each fraction, not their sum
        raise ValueError(f"digits: fractions must be 3 positive numbers summing to 1, got {list(fractions)}")
    data = load_digits()
    x = (data.images / 16 * 2 - 1).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    f_train, f_val, f_test = fractions
    index = np.arange(len(y))
    train, rest = train_test_split(index, train_size=f_train, stratify=y, random_state=settings.seed)
    val, test = train_test_split(
        rest, test_size=f_test / (f_val + f_test), stratify=y[rest], random_state=settings.seed
    )
    arrays = {}
    for split, part in zip(SPLITS, (train, val, test), strict=True):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[part], y[part]
    return ImageSet(**arrays)
