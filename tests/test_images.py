"""symzoo.data.images: the image-set format (ImageSet and its .npz file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symzoo.data.images import ImageSet, load_image_set, save_image_set

SPLITS = ("train", "val", "test")


# --- the .npz format -----------------------------------------------------------------------------------


def tiny_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(SPLITS, (6, 3, 4), strict=True):
        arrays[f"x_{split}"] = rng.standard_normal((n, 1, 4, 4)).astype(np.float32)
        arrays[f"y_{split}"] = rng.integers(0, 3, n).astype(np.int64)
    arrays["y_test"][0] = 4
    return arrays


@pytest.mark.parametrize("name", ["set.npz", "set"])
def test_save_load_roundtrip(tmp_path: Path, name: str) -> None:
    arrays = tiny_arrays()
    path = tmp_path / "data" / name
    save_image_set(path, arrays)
    assert sorted(p.name for p in path.parent.iterdir()) == [name]  # no temporary or suffixed file left
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(arrays)
    images = load_image_set(path)
    assert isinstance(images, ImageSet)
    for split in SPLITS:
        x, y = images.split(split)
        np.testing.assert_array_equal(x, arrays[f"x_{split}"])
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])
    assert images.num_classes == 5
    assert images.input_shape == (1, 4, 4)
    with pytest.raises(ValueError, match="valid"):
        images.split("valid")


def test_save_an_image_set(tmp_path: Path) -> None:
    images = ImageSet(**tiny_arrays())
    save_image_set(tmp_path / "set.npz", images)
    again = load_image_set(tmp_path / "set.npz")
    for key, array in images.arrays().items():
        np.testing.assert_array_equal(getattr(again, key), array)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda a: a.pop("y_val"), "y_val"),
        (lambda a: a.update(x_test=a["x_test"].astype(np.float64)), "x_test"),
        (lambda a: a.update(y_train=a["y_train"].astype(np.int32)), "y_train"),
        (lambda a: a.update(x_val=a["x_val"][:, 0]), "x_val"),
        (lambda a: a.update(y_test=a["y_test"][:-1]), "y_test"),
        (lambda a: a.update(extra=np.zeros(1)), "extra"),
    ],
    ids=["missing-key", "x-dtype", "y-dtype", "ndim", "length", "extra-key"],
)
def test_load_rejects_invalid(tmp_path: Path, change, key: str) -> None:
    arrays = tiny_arrays()
    change(arrays)
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=key) as info:
        load_image_set(path)
    assert str(path) in str(info.value)


def test_save_rejects_invalid_and_writes_nothing(tmp_path: Path) -> None:
    arrays = tiny_arrays()
    del arrays["x_train"]
    with pytest.raises(ValueError, match="x_train"):
        save_image_set(tmp_path / "set.npz", arrays)
    assert list(tmp_path.iterdir()) == []


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_image_set(path)
