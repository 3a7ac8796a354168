"""The conversion of a Small CNN Zoo archive to the zoo format: ``metrics.csv.gz``, row selection, parameters.

``metrics.csv.gz`` row i describes ``weights.npy`` row i (``config.*`` hyper-parameters, ``modeldir``,
``step``, train/test accuracy and loss). A zoo keeps one checkpoint step and one activation; the networks
with test accuracy above ``min_accuracy`` are kept and split by run.
"""

from __future__ import annotations

import gzip
import io
import logging
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from symzoo.data.npy_rows import NpyRows
from symzoo.data.zoo import finalize_models
from symzoo.nets.spec import NetSpec
from symzoo.sources.smallcnnzoo.archive import LAYOUT, METRICS, WEIGHTS, Extracted, extract_archive
from symzoo.sources.smallcnnzoo.layout import Variable, plan, read_layout, to_torch

log = logging.getLogger(__name__)

CONFIG_COLUMNS = tuple(
    f"config.{name}"
    for name in (
        "activation",
        "b_init",
        "dataset",
        "dnn_architecture",
        "dropout",
        "epochs",
        "epochs_between_checkpoints",
        "init_std",
        "l2reg",
        "learning_rate",
        "num_layers",
        "num_units",
        "optimizer",
        "random_seed",
        "train_fraction",
        "w_init",
    )
)
METRIC_COLUMNS = ("train_accuracy", "train_loss", "test_accuracy", "test_loss")
METRICS_COLUMNS = (*CONFIG_COLUMNS, "modeldir", "step", *METRIC_COLUMNS)

CHUNK_ROWS = 2048
"""Rows of ``weights.npy`` converted per step (bounds the memory of the conversion)."""


@dataclass(frozen=True)
class Selection:
    """Which networks of an archive make the zoo: the checkpoint ``step`` and ``activation`` to convert; the
    networks with test accuracy above ``min_accuracy`` are kept and split by run into train / val / test by
    ``fractions``, seeded by ``seed``."""

    step: int
    activation: str
    min_accuracy: float
    fractions: tuple[float, float, float]
    seed: int


def convert_archive(path: Path, selection: Selection, cache_dir: Path) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """The zoo of an archive: :func:`read_archive`, then non-finite networks dropped, filtered and split."""
    spec, params, models = read_archive(path, selection.step, selection.activation, cache_dir)
    params, models = finalize_models(
        params,
        models,
        kept=pl.col("test_accuracy") > selection.min_accuracy,
        fractions=selection.fractions,
        seed=selection.seed,
    )
    return spec, params, models


def read_archive(path: Path, step: int, activation: str, cache_dir: Path) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """Convert the networks of one checkpoint ``step`` and one ``activation`` of a Small CNN Zoo archive.

    Returns the spec, float32 parameters (N, 4970-ish) in torch layout and the models table (model_id,
    source_row, run_id, step, the ``config.*`` columns without their prefix, train/test accuracy and loss).
    The archive's members are extracted once into ``cache_dir/{archive}/``; only the selected rows of
    ``weights.npy`` are read (:class:`~symzoo.data.npy_rows.NpyRows`), in chunks of rows, so memory follows the
    selection, not the archive. Bad archives raise ValueError naming the archive and the member/column.
    """
    path = Path(path)
    extracted = extract_archive(path, cache_dir)
    where = extracted.where
    try:
        weights = NpyRows(extracted.path(WEIGHTS))
    except (ValueError, OSError) as err:
        raise ValueError(f"{where(WEIGHTS)}: {err}") from err
    with weights:
        if weights.dtype.kind != "f":
            raise ValueError(f"{where(WEIGHTS)}: expected a 2-d float array, got {weights.dtype} {weights.shape}")
        return _read_rows(weights, extracted, step, activation)


def _read_rows(
    weights: NpyRows, extracted: Extracted, step: int, activation: str
) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """:func:`read_archive` once ``weights.npy`` is open: the layout, the metrics, the selected rows converted."""
    where, path = extracted.where, extracted.archive
    layout = read_layout(extracted.path(LAYOUT), where(LAYOUT))
    spec, variables = plan(layout, activation, extracted.side, weights.shape[1], where(LAYOUT))
    metrics = read_metrics(extracted.path(METRICS), where(METRICS))
    if len(metrics) != len(weights):
        raise ValueError(
            f"{where(METRICS)}: {len(metrics)} rows but {extracted.members[WEIGHTS]} has {len(weights)} rows"
        )
    rows = select_rows(metrics, step, activation, where(METRICS), path.name)
    params = _convert(weights, rows, spec, variables, desc=f"convert {extracted.name}")
    models = models_frame(metrics, rows)
    log.info("%s: converted %d %s networks at step %d", path.name, len(rows), activation, step)
    return spec, params, models


def read_metrics(file: Path, where: str) -> pl.DataFrame:
    """``metrics.csv.gz`` with its required columns checked and typed; errors name ``where``."""
    try:
        with gzip.open(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{where}: not a readable gzip file ({err})") from err
    try:
        metrics = pl.read_csv(io.BytesIO(data), infer_schema_length=None)
    except Exception as err:  # polars raises several error types for malformed CSV
        raise ValueError(f"{where}: not a readable CSV file ({err})") from err
    for column in METRICS_COLUMNS:
        if column not in metrics.columns:
            raise ValueError(f"{where}: missing column {column!r}")
    casts = {"step": pl.Int64, "modeldir": pl.String, "config.activation": pl.String}
    casts.update({c: pl.Float64 for c in METRIC_COLUMNS})
    for column, dtype in casts.items():
        try:
            metrics = metrics.with_columns(pl.col(column).cast(dtype))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as err:
            raise ValueError(f"{where}: column {column!r} is not {dtype} ({err})") from err
    return metrics


def select_rows(metrics: pl.DataFrame, step: int, activation: str, where: str, name: str) -> np.ndarray:
    """Indices of the rows at checkpoint ``step`` with ``activation``; logs how many of the step's rows have
    another activation (``name``: the archive's file name). Errors name ``where``."""
    at_step = metrics["step"] == step
    if not at_step.any():
        steps = sorted(metrics["step"].drop_nulls().unique().to_list())
        raise ValueError(f"{where}: no rows with step {step} (steps: {steps})")
    chosen = at_step & (metrics["config.activation"] == activation).fill_null(False)
    others = metrics.filter(at_step & ~chosen)["config.activation"].value_counts(sort=True)
    if len(others):
        counts = ", ".join(f"{a}: {c}" for a, c in others.iter_rows())
        log.info(
            "%s: left out %d of %d networks at step %d with another activation than %s (%s)",
            name,
            others["count"].sum(),
            int(at_step.sum()),
            step,
            activation,
            counts,
        )
    rows = np.flatnonzero(chosen.to_numpy())
    if not len(rows):
        raise ValueError(f"{where}: no rows with step {step} and config.activation {activation!r}")
    return rows


def models_frame(metrics: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The zoo's models table for the selected ``rows`` of ``metrics``."""
    selected = metrics[rows]
    config = [c for c in selected.columns if c.startswith("config.")]
    return selected.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("model_id"),
        pl.Series("source_row", rows, dtype=pl.Int64),
        pl.col("modeldir").alias("run_id"),
        pl.col("step"),
        *[pl.col(c).alias(c.removeprefix("config.")) for c in config],
        *[pl.col(c) for c in METRIC_COLUMNS],
    )


def _convert(weights: NpyRows, rows: np.ndarray, spec: NetSpec, variables: list[Variable], desc: str) -> np.ndarray:
    """float32 parameters (len(rows), P) in torch layout from ``rows`` of ``weights``, in chunks of rows."""
    params = np.empty((len(rows), spec.num_params), dtype=np.float32)
    chunks = range(0, len(rows), CHUNK_ROWS)
    for s in tqdm(chunks, desc=desc, unit="chunk", file=sys.stderr, disable=None if len(chunks) >= 4 else True):
        block = weights.read(rows[s : s + CHUNK_ROWS]).astype(np.float32, copy=False)
        for layer, kind, start, end in variables:
            t = spec.tensor(layer, "weight" if kind == "kernel" else "bias")
            params[s : s + len(block), t.offset : t.stop] = to_torch(block[:, start:end], spec, layer, kind)
    return params
