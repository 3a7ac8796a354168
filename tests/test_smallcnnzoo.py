"""Small CNN Zoo conversion (symzoo.sources.smallcnnzoo and the stage ``smallcnnzoo``), against a tiny archive in
the exact upstream layout. The download and its sha256 checks: test_smallcnnzoo_download.py."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from symzoo.data import npy_rows
from symzoo.data.download import ChecksumError, file_digest
from symzoo.data.zoo import read_zoo
from symzoo.nets.functional import forward
from symzoo.sources.smallcnnzoo import archive as archive_module
from symzoo.sources.smallcnnzoo import read_archive
from tests.fixtures.smallcnnzoo import (
    SIDES,
    ZOO_FILES,
    build_small_cnn_zoo,
    make_small_cnn_zoo_archive,
    modeldir,
    read_tar_xz,
    write_tar_xz,
    zoo_options,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default fixture archive: 12 runs (relu, tanh alternating) x 9 checkpoints."""
    path = tmp_path_factory.mktemp("upstream") / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(path)
    return path


# ------------------------------------------------------------------ an independent reference of the Keras net


def _raw(path: Path) -> tuple[np.ndarray, dict[str, tuple[int, int, tuple[int, ...]]], list[dict[str, str]]]:
    """weights.npy, layout.csv and metrics.csv.gz of an archive, read without symzoo."""
    _, members = read_tar_xz(path)
    weights = np.load(io.BytesIO(members["weights.npy"]))
    layout = {
        row["varname"]: (int(row["start_idx"]), int(row["end_idx"]), eval(row["shape"]))
        for row in csv.DictReader(io.StringIO(members["layout.csv"].decode()))
    }
    metrics = list(csv.DictReader(io.StringIO(gzip.decompress(members["metrics.csv.gz"]).decode())))
    return weights, layout, metrics


def _tf_variables(path: Path, run_id: str, step: int) -> dict[str, np.ndarray]:
    """The raw TensorFlow tensors of the checkpoint (run_id, step), found through metrics.csv.gz."""
    weights, layout, metrics = _raw(path)
    (row,) = [i for i, m in enumerate(metrics) if m["modeldir"] == run_id and int(m["step"]) == step]
    return {
        name: weights[row, start:end].astype(np.float64).reshape(shape) for name, (start, end, shape) in layout.items()
    }


def keras_reference(tf: dict[str, np.ndarray], x_nhwc: np.ndarray, activation: str) -> np.ndarray:
    """Logits of the Keras network: 3 x Conv2D(16, 3x3, stride 2, VALID, activation), GAP, Dense(10)."""
    act = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh}[activation]
    h = x_nhwc
    for layer in ("conv2d", "conv2d_1", "conv2d_2"):
        kernel, bias = tf[f"{layer}/kernel:0"], tf[f"{layer}/bias:0"]  # HWIO
        n, side, _, channels = h.shape
        out = (side - 3) // 2 + 1
        patches = np.empty((n, out, out, 3, 3, channels))
        for i in range(out):
            for j in range(out):
                patches[:, i, j] = h[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
        h = act(np.einsum("nijklc,klco->nijo", patches, kernel) + bias)
    h = h.mean(axis=(1, 2))
    return h @ tf["dense/kernel:0"] + tf["dense/bias:0"]


def _assert_matches_reference(path: Path, zoo_params: np.ndarray, models: pl.DataFrame, spec, ids) -> None:
    side, channels = spec.input_shape[1], spec.input_shape[0]
    x = torch.randn(5, channels, side, side, generator=torch.Generator().manual_seed(0))
    for i in ids:
        run_id, step = models["run_id"][int(i)], models["step"][int(i)]
        ours = forward(spec, torch.from_numpy(np.array(zoo_params[int(i)])), x).double().numpy()
        theirs = keras_reference(
            _tf_variables(path, run_id, step), x.permute(0, 2, 3, 1).double().numpy(), spec.activation
        )
        assert np.abs(theirs).max() > 0.1  # a meaningful comparison, not of two near-zero outputs
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("archive_name", "activation", "in_channels"),
    [("cifar10", "relu", 1), ("cifar10", "tanh", 1), ("mnist", "tanh", 1), ("svhn_cropped", "relu", 3)],
)
def test_converted_networks_compute_the_keras_logits(
    tmp_path: Path, archive_name: str, activation: str, in_channels: int
) -> None:
    path = tmp_path / f"{archive_name}.tar.xz"
    make_small_cnn_zoo_archive(path, n_runs=6, checkpoints=(0, 20, 86), archive=archive_name, in_channels=in_channels)
    out = build_small_cnn_zoo(
        zoo_options(path, activation=activation, min_accuracy=0.0), tmp_path / "zoo", tmp_path / "cache"
    )
    zoo = read_zoo(out)
    assert zoo.spec.input_shape == (in_channels, SIDES[archive_name], SIDES[archive_name])
    assert zoo.spec.activation == activation and zoo.spec.num_params == 4970 + 144 * (in_channels - 1)
    assert len(zoo) == 3
    _assert_matches_reference(path, zoo.params, zoo.models, zoo.spec, range(len(zoo)))


# ---------------------------------------------------------------------------------- selection and split


def test_models_table_and_selection(tmp_path: Path, archive: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    spec, params, models = read_archive(archive, 86, "relu", tmp_path / "cache")
    assert params.dtype == np.float32 and params.shape == (6, spec.num_params)
    # Only step-86 rows of relu runs (even runs); the tanh rows are left out, and the log says how many.
    assert models["run_id"].to_list() == [modeldir("cifar10", r) for r in range(0, 12, 2)]
    assert set(models["step"].to_list()) == {86} and set(models["activation"].to_list()) == {"relu"}
    assert "left out 6 of 12 networks at step 86" in caplog.text
    assert models["model_id"].to_list() == list(range(6))
    assert models["source_row"].to_list() == [r * 9 + 8 for r in range(0, 12, 2)]
    expected = {"model_id": pl.Int64, "run_id": pl.String, "step": pl.Int64, "test_accuracy": pl.Float64}
    expected |= {"train_accuracy": pl.Float64, "train_loss": pl.Float64, "test_loss": pl.Float64}
    assert {k: models.schema[k] for k in expected} == expected
    config = {"learning_rate", "optimizer", "l2reg", "dropout", "init_std", "w_init", "b_init", "train_fraction"}
    assert config <= set(models.columns) and not any(c.startswith("config.") for c in models.columns)
    assert models["optimizer"].is_in(["adam", "rmsprop", "sgd"]).all()

    # Step 20 gives the step-20 checkpoints (other parameters, same networks as Keras computes them).
    spec20, params20, models20 = read_archive(archive, 20, "relu", tmp_path / "cache")
    assert set(models20["step"].to_list()) == {20} and models20["run_id"].equals(models["run_id"])
    assert not np.allclose(params20, params)
    _assert_matches_reference(archive, params20, models20, spec20, [0, 3])

    spec_t, _, models_t = read_archive(archive, 86, "tanh", tmp_path / "cache")
    assert spec_t.activation == "tanh" and set(models_t["activation"].to_list()) == {"tanh"} and len(models_t) == 6
    with pytest.raises(ValueError, match=r"no rows with step 50"):
        read_archive(archive, 50, "relu", tmp_path / "cache")


def test_kept_filter_and_meta(tmp_path: Path, archive: Path) -> None:
    out = build_small_cnn_zoo(zoo_options(archive, min_accuracy=0.4), tmp_path / "zoo", tmp_path / "cache")
    zoo = read_zoo(out)
    kept = zoo.models["kept"].to_numpy()
    assert (kept == (zoo.models["test_accuracy"].to_numpy() > 0.4)).all()
    assert 0 < kept.sum() < len(zoo)  # the fixture's accuracies fall on both sides of 0.4
    assert zoo.models.filter(~pl.col("kept"))["split"].is_null().all()
    assert zoo.models.filter(pl.col("kept"))["split"].is_not_null().all()
    source = json.loads((out / "arch.json").read_text())["source"]
    assert source == {
        "kind": "smallcnnzoo",
        "archive": "cifar10",
        "url": archive.as_uri(),
        "sha256": file_digest(archive, "sha256"),
        "step": 86,
    }
    assert zoo.meta["dataset"] == "cifar10gs"


def test_split_by_run_is_deterministic_stable_and_follows_fractions(tmp_path: Path) -> None:
    big, small = tmp_path / "big" / "cifar10.tar.xz", tmp_path / "small" / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(big, n_runs=300, checkpoints=(86,), activations=("relu",))
    make_small_cnn_zoo_archive(small, n_runs=120, checkpoints=(86,), activations=("relu",))
    options = {"min_accuracy": 0.0, "fractions": [0.8, 0.1, 0.1], "seed": 3}
    first = read_zoo(build_small_cnn_zoo(zoo_options(big, **options), tmp_path / "a", tmp_path / "cache_big"))
    again = read_zoo(build_small_cnn_zoo(zoo_options(big, **options), tmp_path / "b", tmp_path / "cache_big"))
    fewer = read_zoo(build_small_cnn_zoo(zoo_options(small, **options), tmp_path / "c", tmp_path / "cache_small"))

    counts = first.models["split"].value_counts()
    share = dict(zip(counts["split"], counts["count"] / len(first), strict=True))
    assert 0.7 < share["train"] < 0.9 and 0.04 < share["val"] < 0.16 and 0.04 < share["test"] < 0.16
    assert first.models.equals(again.models) and np.array_equal(first.params, again.params)

    shared = first.models.join(fewer.models, on="run_id", suffix="_fewer")
    assert len(shared) == 120
    assert (shared["split"] == shared["split_fewer"]).all()
    assert np.array_equal(
        first.params[shared["model_id"].to_numpy()], fewer.params[shared["model_id_fewer"].to_numpy()]
    )
    other_seed = read_zoo(
        build_small_cnn_zoo(zoo_options(big, **{**options, "seed": 4}), tmp_path / "d", tmp_path / "cache_big")
    )
    assert not (other_seed.models["split"] == first.models["split"]).all()


def test_nan_runs_are_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(path, n_runs=12, checkpoints=(0, 86), nan_runs=(2, 4, 5))
    caplog.set_level(logging.INFO)
    zoo = read_zoo(build_small_cnn_zoo(zoo_options(path, min_accuracy=0.0), tmp_path / "zoo", tmp_path / "cache"))
    assert "dropped 2 of 6 networks with NaN/inf parameters" in caplog.text  # runs 2 and 4 (run 5 is tanh)
    assert len(zoo) == 4 and np.isfinite(zoo.params).all()
    assert set(zoo.models["run_id"].to_list()) == {modeldir("cifar10", r) for r in (0, 6, 8, 10)}
    assert zoo.models["model_id"].to_list() == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("damage", ["truncated", "footer_cut", "not_xz"])
def test_corrupt_archive(tmp_path: Path, archive: Path, damage: str) -> None:
    bad = tmp_path / "upstream" / "cifar10.tar.xz"
    bad.parent.mkdir()
    data = archive.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "footer_cut": data[:-8], "not_xz": b"not an archive\n" * 100}
    bad.write_bytes(damaged[damage])
    out = tmp_path / "zoo"
    with pytest.raises(ValueError, match="cifar10.tar.xz") as err:
        build_small_cnn_zoo(zoo_options(bad), out, tmp_path / "cache")
    assert not isinstance(err.value, ChecksumError)
    assert str(tmp_path / "cache" / "cifar10.tar.xz") in str(err.value)
    assert not any((out / name).exists() for name in ZOO_FILES)
    assert not (tmp_path / "cache" / "cifar10" / "weights.npy").exists()  # no half-extracted member


def _rewrite(archive: Path, dest: Path, edit) -> Path:
    folder, members = read_tar_xz(archive)
    write_tar_xz(dest, folder, edit(dict(members)))
    return dest


def _edit_csv(text: str, edit) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(edit(rows))
    return out.getvalue()


def _drop_metrics_column(members: dict[str, bytes]) -> dict[str, bytes]:
    text = gzip.decompress(members["metrics.csv.gz"]).decode()
    k = text.splitlines()[0].split(",").index("config.learning_rate")
    members["metrics.csv.gz"] = gzip.compress(_edit_csv(text, lambda rows: [r[:k] + r[k + 1 :] for r in rows]).encode())
    return members


def _wrong_layout_shape(members: dict[str, bytes]) -> dict[str, bytes]:
    def edit(rows):
        return [[*r[:3], "(16, 10, 1, 1)"] if r[0] == "dense/kernel:0" else r for r in rows]

    members["layout.csv"] = _edit_csv(members["layout.csv"].decode(), edit).encode()
    return members


def _swapped_layout_slices(members: dict[str, bytes]) -> dict[str, bytes]:
    def edit(rows):
        slices = {r[0]: r[1:3] for r in rows[1:]}
        swap = {"conv2d_1/kernel:0": "conv2d_2/kernel:0", "conv2d_2/kernel:0": "conv2d_1/kernel:0"}
        return [[r[0], *slices[swap[r[0]]], r[3]] if r[0] in swap else r for r in rows]

    members["layout.csv"] = _edit_csv(members["layout.csv"].decode(), edit).encode()
    return members


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {k: v for k, v in m.items() if k != "layout.csv"}, r"no member layout\.csv"),
        (lambda m: {k: v for k, v in m.items() if k != "weights.npy"}, r"no member weights\.npy"),
        (_drop_metrics_column, r"cifar10/metrics\.csv\.gz: missing column 'config\.learning_rate'"),
        (_wrong_layout_shape, r"cifar10/layout\.csv: dense/kernel:0 has shape \(16, 10, 1, 1\)"),
    ],
)
def test_bad_members_name_the_archive_and_the_member(tmp_path: Path, archive: Path, edit, message: str) -> None:
    bad = _rewrite(archive, tmp_path / "upstream" / "cifar10.tar.xz", edit)
    out = tmp_path / "zoo"
    with pytest.raises(ValueError, match=message) as err:
        build_small_cnn_zoo(zoo_options(bad), out, tmp_path / "cache")
    assert "cifar10.tar.xz" in str(err.value)
    assert not any((out / name).exists() for name in ZOO_FILES)


def test_conversion_follows_the_layout_slices(tmp_path: Path, archive: Path) -> None:
    """Swapping two same-shaped slices in layout.csv swaps the converted layers: the layout is obeyed."""
    swapped = _rewrite(archive, tmp_path / "swapped" / "cifar10.tar.xz", _swapped_layout_slices)
    spec, normal, _ = read_archive(archive, 86, "relu", tmp_path / "cache_a")
    _, other, _ = read_archive(swapped, 86, "relu", tmp_path / "cache_b")
    one, two = spec.tensor(1, "weight"), spec.tensor(2, "weight")
    assert np.array_equal(other[:, one.offset : one.stop], normal[:, two.offset : two.stop])
    assert np.array_equal(other[:, two.offset : two.stop], normal[:, one.offset : one.stop])


def test_unknown_options_are_rejected(tmp_path: Path, archive: Path) -> None:
    with pytest.raises(ValueError, match="cifar100"):
        build_small_cnn_zoo({"archive": "cifar100"}, tmp_path / "zoo", tmp_path / "cache")
    with pytest.raises(ValueError, match="gelu"):
        build_small_cnn_zoo(zoo_options(archive, activation="gelu"), tmp_path / "zoo", tmp_path / "cache")
    assert not (tmp_path / "zoo").exists()


def test_tarfile_is_streamed(tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive is read in one streaming pass (tar mode "r|"), never by random access."""
    modes = []
    real_open = tarfile.open

    def spy(*args: object, **kwargs: object):
        modes.append(kwargs.get("mode", args[1] if len(args) > 1 else "r"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(archive_module.tarfile, "open", spy)
    read_archive(archive, 86, "relu", tmp_path / "cache")
    assert modes == ["r|"]


def test_conversion_reads_only_the_selected_rows(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory follows the selection: the bytes read from weights.npy are exactly the selected rows, read by
    position (never a memory map of the whole file)."""
    reads: list[tuple[int, int]] = []
    real_preadv = npy_rows.os.preadv

    def counting_preadv(fd: int, buffers: list, offset: int) -> int:
        reads.append((offset, sum(len(b) for b in buffers)))
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(npy_rows.os, "preadv", counting_preadv)
    monkeypatch.setattr(np, "load", None)  # a memory map of weights.npy would fault in pages around every row
    _, params, models = read_archive(archive, 86, "relu", tmp_path / "cache")
    with npy_rows.NpyRows(tmp_path / "cache" / "cifar10" / "weights.npy") as weights:
        row_bytes, offset, total_rows = weights.row_bytes, weights.offset, len(weights)
    touched = [
        row
        for start, nbytes in reads
        for row in range((start - offset) // row_bytes, (start - offset + nbytes) // row_bytes)
    ]
    assert sorted(touched) == models["source_row"].to_list()
    assert sum(nbytes for _, nbytes in reads) == len(params) * row_bytes
    assert len(params) < total_rows / 10  # one step of nine, one activation of two


def test_the_streaming_builder_writes_the_archive_it_always_wrote(archive: Path) -> None:
    """The members of the default fixture archive, pinned by digest (metrics.csv.gz decompressed): the builder
    writes run by run, and the bytes are those of the builder that held the whole array."""
    _, members = read_tar_xz(archive)
    members["metrics.csv"] = gzip.decompress(members.pop("metrics.csv.gz"))
    digests = {name: hashlib.sha256(data).hexdigest()[:16] for name, data in members.items()}
    # metrics.csv: its floats are written to 10 significant digits, so the text is the same on every machine (the
    # full repr of np.exp / np.log results differed in the last bit between machines: two earlier pins, c0eeff7b...
    # and c77a60f5..., each held on some machines only)
    pinned = {"weights.npy": "ab980fbfcb7c4272", "layout.csv": "40bdbe6a357f3faf", "metrics.csv": "fc8c300c5c36bdd8"}
    assert digests == pinned


def test_a_stored_xz_archive_holds_the_same_members_and_converts(tmp_path: Path, archive: Path) -> None:
    """``stored=True`` (the multi-GB benchmark archives) writes the same members into an uncompressed xz stream
    that lzma reads and verifies (its CRC32 check and index), and the conversion reads like any other."""
    stored = tmp_path / "stored" / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(stored, stored=True)
    assert read_tar_xz(stored) == read_tar_xz(archive)
    assert stored.stat().st_size > archive.stat().st_size  # not compressed
    _, expected, _ = read_archive(archive, 86, "relu", tmp_path / "cache_a")
    _, params, _ = read_archive(stored, 86, "relu", tmp_path / "cache_b")
    assert np.array_equal(params, expected)
