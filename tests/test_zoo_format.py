"""The zoo format: write, read back, validate; NaN rows dropped with a count; stable splits."""

import json
import logging

import numpy as np
import polars as pl
import pytest

from symzoo.data.zoo import (
    ZooFormatError,
    assign_splits,
    finalize_models,
    read_models,
    read_zoo,
    write_zoo,
)
from symzoo.nets.spec import NetSpec

SPEC = NetSpec("mlp", (1, 4, 4), (5,), 3, "tanh")


def make(n=40, seed=0):
    rng = np.random.default_rng(seed)
    params = rng.normal(size=(n, SPEC.num_params)).astype(np.float32)
    models = pl.DataFrame(
        {
            "model_id": np.arange(n),
            "run_id": [f"run-{i:03d}" for i in range(n)],
            "step": np.full(n, 15),
            "test_accuracy": rng.uniform(0, 1, n),
            "learning_rate": rng.uniform(0, 1, n),
        }
    )
    return params, models


def test_write_and_read_back(tmp_path):
    params, models = finalize_models(*make(), pl.col("test_accuracy") > 0.2, [0.8, 0.1, 0.1])
    write_zoo(tmp_path / "z", SPEC, params, models, {"dataset": "digits"})
    zoo = read_zoo(tmp_path / "z")
    assert isinstance(zoo.params, np.memmap) and zoo.params.dtype == np.float32
    np.testing.assert_array_equal(zoo.params, params)
    assert zoo.spec == SPEC and zoo.meta == {"dataset": "digits"}
    assert zoo.models.equals(models)
    kept = models.filter("kept")
    assert sorted(np.concatenate([zoo.ids(s) for s in ("train", "val", "test")])) == kept["model_id"].to_list()
    assert (models.filter(~pl.col("kept"))["test_accuracy"] <= 0.2).all()
    ids = zoo.ids("val")[::-1]
    np.testing.assert_array_equal(zoo.tensor(ids).numpy(), params[ids])
    arch = json.loads((tmp_path / "z/arch.json").read_text())
    assert arch["layout"][0] == {"name": "layers.0.weight", "shape": [5, 16], "offset": 0}


def test_nonfinite_rows_are_dropped_with_a_logged_count(caplog):
    params, models = make()
    params[[3, 7], 2] = np.nan
    params[11, 0] = np.inf
    with caplog.at_level(logging.WARNING):
        out, rows = finalize_models(params, models, pl.lit(True), [0.8, 0.1, 0.1])
    assert "dropped 3 of 40 networks" in caplog.text
    assert len(out) == len(rows) == 37 and np.isfinite(out).all()
    assert rows["model_id"].to_list() == list(range(37))
    assert "run-003" not in rows["run_id"].to_list()


def test_writing_nan_params_is_refused_and_leaves_nothing(tmp_path):
    params, models = finalize_models(*make(), pl.lit(True), [0.8, 0.1, 0.1])
    params[5, 0] = np.nan
    with pytest.raises(ZooFormatError, match=r"params.npy: rows \[5\]"):
        write_zoo(tmp_path / "z", SPEC, params, models)
    assert not (tmp_path / "z").exists() or not list((tmp_path / "z").iterdir())


def test_splits_are_deterministic_and_stable_by_run():
    runs = [f"r{i}" for i in range(2000)]
    a = assign_splits(runs, [0.8, 0.1, 0.1], seed=0)
    assert a == assign_splits(runs, [0.8, 0.1, 0.1], seed=0)
    assert dict(zip(runs[::3], assign_splits(runs[::3], [0.8, 0.1, 0.1]))) == dict(zip(runs[::3], a[::3]))
    assert a != assign_splits(runs, [0.8, 0.1, 0.1], seed=1)
    assert abs(a.count("train") / 2000 - 0.8) < 0.04 and abs(a.count("test") / 2000 - 0.1) < 0.03
    with pytest.raises(ValueError, match="fractions"):
        assign_splits(runs, [0.8, 0.3, 0.1])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "params.npy").unlink(), "missing .*params.npy"),
        (lambda d: np.save(d / "params.npy", np.zeros((40, 3), np.float32)), r"params.npy: expected float32 \(N, "),
        (lambda d: np.save(d / "params.npy", np.zeros((40, SPEC.num_params))), "float64"),
        (lambda d: (d / "models.parquet").write_bytes(b"garbage"), "models.parquet: not a readable Parquet"),
        (
            lambda d: pl.read_parquet(d / "models.parquet").drop("kept").write_parquet(d / "models.parquet"),
            "missing column 'kept'",
        ),
        (lambda d: pl.read_parquet(d / "models.parquet")[:5].write_parquet(d / "models.parquet"), "5 rows"),
        (lambda d: (d / "arch.json").write_text("{"), "arch.json: not a valid architecture"),
    ],
)
def test_corrupt_zoos_name_the_file(tmp_path, damage, message):
    params, models = finalize_models(*make(), pl.lit(True), [0.8, 0.1, 0.1])
    write_zoo(tmp_path, SPEC, params, models)
    damage(tmp_path)
    with pytest.raises((ZooFormatError, FileNotFoundError), match=message):
        read_zoo(tmp_path)


def test_nan_params_are_refused_on_write_and_found_by_the_explicit_check(tmp_path):
    params, models = finalize_models(*make(), pl.lit(True), [0.8, 0.1, 0.1])
    bad = params.copy()
    bad[9, 1] = np.nan
    with pytest.raises(ZooFormatError, match=r"rows \[9\] have NaN"):
        write_zoo(tmp_path, SPEC, bad, models)
    assert not (tmp_path / "params.npy").exists()
    write_zoo(tmp_path, SPEC, params, models)
    np.save(tmp_path / "params.npy", bad)  # damaged behind the format's back: readers do not scan...
    zoo = read_zoo(tmp_path)
    with pytest.raises(ZooFormatError, match=r"rows \[9\] have NaN"):
        zoo.check_finite()  # ...the explicit check (symzoo zoo-info) does


def test_the_table_reads_without_the_parameters(tmp_path):
    params, models = finalize_models(*make(), pl.lit(True), [0.8, 0.1, 0.1])
    write_zoo(tmp_path, SPEC, params, models)
    (tmp_path / "params.npy").unlink()
    assert read_models(tmp_path).equals(models)
