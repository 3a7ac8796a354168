"""Generated zoos are trained in shards: what a shard holds, and how shards become one zoo's rows.

A shard holds every checkpoint of its networks: parameters with one row per (checkpoint, network),
checkpoint-major, and a table of the same rows (``run_id``, ``step`` = the checkpoint epoch, the sampled
configuration and the metrics). Merging keeps one checkpoint of every shard; the zoo's filtering and splits
are those of any zoo (:func:`symzoo.data.zoo.finalize_models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from symzoo.nets.spec import NetSpec
from symzoo.zoo.state import TrainState


@dataclass(frozen=True)
class Shard:
    """A shard as read back: ``name`` (for messages), the spec, params (rows, P) and the rows' table."""

    name: str
    spec: NetSpec
    params: np.ndarray
    models: pl.DataFrame


def shard_rows(configs: pl.DataFrame, state: TrainState) -> tuple[np.ndarray, pl.DataFrame]:
    """The rows of a trained shard: float32 params (checkpoints x networks, P) and their table."""
    epochs, params = state.checkpoint_params()
    rows = pl.DataFrame({"run_id": configs["run_id"].to_list() * len(epochs), "step": np.repeat(epochs, len(configs))})
    metrics = state.metrics_frame().rename({"epoch": "step"})
    models = rows.join(configs, on="run_id", how="left").join(metrics, on=["run_id", "step"], how="left")
    return params.reshape(-1, params.shape[-1]).numpy().astype(np.float32), models


def select_checkpoint(shards: Sequence[Shard], step: int) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """The rows at checkpoint ``step`` of every shard, in order: (spec, params (N, P), models).

    ``models`` gains a first column ``model_id`` (0 .. N - 1). Every shard must have the same spec and a
    checkpoint at ``step``.
    """
    if not shards:
        raise ValueError("no shards to merge")
    spec = shards[0].spec
    params, models = [], []
    for shard in shards:
        if shard.spec != spec:
            raise ValueError(f"shard {shard.name}: architecture {shard.spec} differs from the first shard's {spec}")
        rows = np.flatnonzero((shard.models["step"] == step).to_numpy())
        if not len(rows):
            raise ValueError(f"shard {shard.name}: no checkpoint at step {step}")
        params.append(np.asarray(shard.params[rows]))
        models.append(shard.models[rows])
    merged = pl.concat(models, how="vertical_relaxed")
    merged = merged.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("model_id"), pl.all())
    return spec, np.concatenate(params), merged
