"""data/merge.py: the merging stages' files read back as written, and bad files named in their errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from symzoo.data.merge import (
    read_endpoints,
    read_medoid,
    read_originals,
    read_pairs,
    write_endpoints,
    write_medoid,
    write_originals,
    write_pairs,
)
from symzoo.nets.spec import NetSpec

SPEC = NetSpec("mlp", (1, 2, 2), (3,), 2, "tanh")
PAIRS = pl.DataFrame({"pair_id": [0, 1], "model_a": [4, 2], "model_b": [0, 3]})


def test_pairs_and_originals_round_trip_and_are_checked(tmp_path):
    write_pairs(tmp_path / "pairs.parquet", PAIRS)
    assert read_pairs(tmp_path / "pairs.parquet", 5).equals(PAIRS)
    with pytest.raises(ValueError, match=r"pairs.parquet: model ids must lie in 0..3"):
        read_pairs(tmp_path / "pairs.parquet", 4)
    originals = PAIRS.select("pair_id").with_columns(
        **{name: pl.Series([0.5, 1.5]) for name in ("orig_loss_a", "orig_loss_b", "orig_score_a", "orig_score_b")}
    )
    write_originals(tmp_path / "originals.parquet", originals)
    assert read_originals(tmp_path / "originals.parquet", PAIRS).equals(originals)
    with pytest.raises(ValueError, match="originals.parquet: its pair_id column is not that of the pairs"):
        read_originals(tmp_path / "originals.parquet", PAIRS.head(1))
    originals.drop("orig_score_b").write_parquet(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match=r"short.parquet: missing column\(s\) \['orig_score_b'\]"):
        read_originals(tmp_path / "short.parquet", PAIRS)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="junk.parquet: not a readable pairs table"):
        read_pairs(tmp_path / "junk.parquet", 5)


def test_endpoints_round_trip_and_non_finite_ones_are_never_written(tmp_path):
    a, b = torch.randn(2, SPEC.num_params), torch.randn(2, SPEC.num_params)
    write_endpoints(tmp_path / "endpoints.npy", a, b)
    ra, rb = read_endpoints(tmp_path / "endpoints.npy", SPEC, 2)
    assert torch.equal(ra, a) and torch.equal(rb, b)
    with pytest.raises(ValueError, match=r"endpoints.npy: expected float32 \(3, 2, 23\)"):
        read_endpoints(tmp_path / "endpoints.npy", SPEC, 3)
    b[1, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="bad.npy: endpoints with NaN/inf parameters; nothing written"):
        write_endpoints(tmp_path / "bad.npy", a, b)
    assert not (tmp_path / "bad.npy").exists() and not list(tmp_path.glob(".bad.npy*"))


def test_the_medoid_record_round_trips_and_names_a_network_of_the_zoo(tmp_path):
    write_medoid(tmp_path / "medoid.json", np.int64(3), candidates=10, images=64, seed=0)
    assert read_medoid(tmp_path / "medoid.json", 5) == 3
    with pytest.raises(ValueError, match=r"medoid.json: model_id 3 is not a network of the zoo \(0..2\)"):
        read_medoid(tmp_path / "medoid.json", 3)
    with pytest.raises(FileNotFoundError, match="missing.json: no such medoid record"):
        read_medoid(tmp_path / "missing.json", 5)
    (tmp_path / "bad.json").write_text('{"id": 3}')
    with pytest.raises(ValueError, match="bad.json: not a medoid record"):
        read_medoid(tmp_path / "bad.json", 5)
