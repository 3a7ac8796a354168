"""scikit-learn's bundled 8x8 digits (no download) as an image set, split deterministically."""

from __future__ import annotations

import numpy as np

from symzoo.data.images import ImageSet, SplitSettings, stratified_split


def digits_image_set(settings: SplitSettings) -> ImageSet:
    """The digits as (N, 1, 8, 8) float32 images in [-1, 1] with int64 labels, split by ``settings.fractions``.

    The split is stratified by class and deterministic in ``settings.seed``.
    """
    from sklearn.datasets import load_digits  # heavy; needed only here

    data = load_digits()
    x = (data.images / 16 * 2 - 1).astype(np.float32)[:, None]
    return stratified_split(x, data.target.astype(np.int64), settings, "digits")
