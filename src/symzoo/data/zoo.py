"""The one zoo format every source writes and every later stage reads.

``results/zoo/{zoo}/`` holds
- ``params.npy``: float32 (N, P), torch layout, memory-mapped on read;
- ``models.parquet``: one row per network (row i describes ``params[i]``);
- ``arch.json``: the :class:`NetSpec` (with the zoo's ``task``), its parameter layout, and where the zoo came from.

Finiteness is checked once, on write (:func:`write_zoo` refuses NaN/inf parameters); readers map the parameters
without scanning them, and :func:`read_models` reads the table alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.nets.spec import NetSpec, task_of

log = logging.getLogger(__name__)

PARAMS, MODELS, ARCH = "params.npy", "models.parquet", "arch.json"
SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS: dict[str, type[pl.DataType]] = {
    "model_id": pl.Int64,
    "run_id": pl.String,
    "step": pl.Int64,
    "test_accuracy": pl.Float64,
    "split": pl.String,
    "kept": pl.Boolean,
}


class ZooFormatError(ValueError):
    """A zoo on disk (or about to be written) breaks the format; the message names the file and the field."""


@dataclass(frozen=True)
class Zoo:
    """A zoo read from disk. ``params`` is a read-only memory map; ``models`` row i describes ``params[i]``."""

    root: Path
    spec: NetSpec
    params: np.ndarray
    models: pl.DataFrame
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.models)

    def ids(self, split: str | None = None) -> np.ndarray:
        """Row indices of the kept networks (of one split, if given)."""
        mask = self.models["kept"]
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
            mask = mask & (self.models["split"] == split)
        return self.models.filter(mask)["model_id"].to_numpy()

    def check_finite(self) -> None:
        """Scan every parameter (write_zoo did when the zoo was written); an error names the rows with NaN/inf."""
        bad = _nonfinite_rows(self.params)
        if len(bad):
            raise ZooFormatError(f"{self.root / PARAMS}: rows {bad[:10].tolist()} have NaN/inf parameters")

    def tensor(self, ids: Sequence[int] | np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
        """Parameters of the given rows as a float32 tensor on ``device``."""
        return torch.from_numpy(np.ascontiguousarray(self.params[np.asarray(ids)])).to(device)


def _validate_models(models: pl.DataFrame, n: int, where: str) -> None:
    for name, dtype in REQUIRED_COLUMNS.items():
        if name not in models.columns:
            raise ZooFormatError(f"{where}: missing column {name!r}")
        if models.schema[name] != dtype:
            raise ZooFormatError(f"{where}: column {name!r} has type {models.schema[name]}, expected {dtype}")
    if len(models) != n:
        raise ZooFormatError(f"{where}: {len(models)} rows but params has {n} networks")
    if not (models["model_id"].to_numpy() == np.arange(n)).all():
        raise ZooFormatError(f"{where}: model_id must be the row index 0..{n - 1}")
    bad = models.filter(pl.col("split").is_not_null() & ~pl.col("split").is_in(SPLITS))["split"].unique().to_list()
    if bad:
        raise ZooFormatError(f"{where}: column 'split' has values {bad}, expected one of {SPLITS} or null")
    if models.filter(pl.col("kept") & pl.col("split").is_null()).height:
        raise ZooFormatError(f"{where}: every kept network needs a split")


def _nonfinite_rows(params: np.ndarray, chunk: int = 4096) -> np.ndarray:
    rows = [np.flatnonzero(~np.isfinite(params[s : s + chunk]).all(axis=1)) + s for s in range(0, len(params), chunk)]
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


def drop_nonfinite(params: np.ndarray, models: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    """Drop networks with NaN or inf parameters (logging how many) and renumber ``model_id``."""
    bad = _nonfinite_rows(params)
    if len(bad):
        named = models[bad[:10]].select(*[c for c in ("run_id", "step") if c in models.columns]).rows()
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        log.warning(
            "dropped %d of %d networks with NaN/inf parameters (run, step): %s%s", len(bad), len(params), named, more
        )
        keep = np.setdiff1d(np.arange(len(params)), bad)
        params, models = params[keep], models[keep]
    return params, models.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("model_id"))


def assign_splits(run_ids: Sequence[str], fractions: Sequence[float], seed: int = 0) -> list[str]:
    """Train/val/test per run, from a hash of (seed, run id): deterministic, and stable when runs come or go."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, not {list(fractions)}")
    edges = np.cumsum(fractions)[:-1]

    def unit(run: str) -> float:
        digest = hashlib.sha256(f"{seed}:{run}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return [SPLITS[int(np.searchsorted(edges, unit(r), side="right"))] for r in run_ids]


def finalize_models(
    params: np.ndarray, models: pl.DataFrame, kept: pl.Expr, fractions: Sequence[float], seed: int = 0
) -> tuple[np.ndarray, pl.DataFrame]:
    """The shared last step of every zoo source: drop non-finite rows, filter, split the kept runs."""
    params, models = drop_nonfinite(params, models)
    models = models.with_columns(kept.fill_null(False).alias("kept"))
    splits = assign_splits(models["run_id"].to_list(), fractions, seed)
    split = pl.Series("split", splits, dtype=pl.String)
    models = models.with_columns(pl.when(pl.col("kept")).then(split).otherwise(None).alias("split"))
    counts = {s: int((models["split"] == s).sum()) for s in SPLITS}
    log.info(
        "kept %d of %d networks (%s)",
        models["kept"].sum(),
        len(models),
        ", ".join(f"{s}: {n}" for s, n in counts.items()),
    )
    empty = [s for s, n in counts.items() if n == 0]
    if empty:
        log.warning(
            "the %s split(s) came out empty (%d kept networks, fractions %s): training an autoencoder needs train "
            "and val networks, merging needs test networks; grow the zoo or lower the accuracy filter",
            "/".join(empty), models["kept"].sum(), list(fractions),
        )  # fmt: skip
    return params, models


def write_zoo(
    root: str | Path, spec: NetSpec, params: np.ndarray, models: pl.DataFrame, meta: dict | None = None
) -> Path:
    """Validate and write a zoo; each file appears atomically, and nothing is written if validation fails."""
    root = Path(root)
    params = np.asarray(params)
    if params.dtype != np.float32 or params.ndim != 2 or params.shape[1] != spec.num_params:
        raise ZooFormatError(
            f"{root / PARAMS}: expected float32 (N, {spec.num_params}), got {params.dtype} {params.shape}"
        )
    bad = _nonfinite_rows(params)
    if len(bad):
        raise ZooFormatError(f"{root / PARAMS}: rows {bad[:10].tolist()} have NaN/inf parameters (drop them first)")
    _validate_models(models, len(params), str(root / MODELS))
    arch = {**spec.to_dict(), **(meta or {})}
    with atomic_path(root / PARAMS) as tmp:
        np.save(tmp, params)
    with atomic_path(root / MODELS) as tmp:
        models.write_parquet(tmp)
    with atomic_path(root / ARCH) as tmp:
        tmp.write_text(json.dumps(arch, indent=2) + "\n")
    return root


def read_models(root: str | Path, num_networks: int | None = None) -> pl.DataFrame:
    """The validated ``models.parquet`` of the zoo at ``root`` (``num_networks``: the rows it must have)."""
    root = Path(root)
    path = root / MODELS
    if not path.is_file():
        raise FileNotFoundError(f"zoo {root}: missing {path}")
    try:
        models = pl.read_parquet(path)
    except Exception as err:  # polars raises several error types for a corrupt file
        raise ZooFormatError(f"{path}: not a readable Parquet file ({err})") from err
    _validate_models(models, len(models) if num_networks is None else num_networks, str(path))
    return models


def read_task(root: str | Path) -> str:
    """The task of the zoo at ``root`` (``classification`` or ``inr``), from its ``arch.json`` alone
    (:func:`symzoo.nets.spec.task_of`: an ``arch.json`` written before the task was stored gets its activation's)."""
    path = Path(root) / ARCH
    if not path.is_file():
        raise FileNotFoundError(f"zoo {root}: missing {path}")
    try:
        return task_of(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ZooFormatError(f"{path}: not a valid architecture file ({err})") from err


def read_zoo(root: str | Path) -> Zoo:
    """Read and validate a zoo directory (the parameters memory-mapped, not scanned: finiteness was checked on
    write); every error names the file and what is wrong with it."""
    root = Path(root)
    for name in (PARAMS, MODELS, ARCH):
        if not (root / name).is_file():
            raise FileNotFoundError(f"zoo {root}: missing {root / name}")
    try:
        arch = json.loads((root / ARCH).read_text())
        spec = NetSpec.from_dict(arch)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ZooFormatError(f"{root / ARCH}: not a valid architecture file ({err})") from err
    try:
        params = np.load(root / PARAMS, mmap_mode="r")
    except ValueError as err:
        raise ZooFormatError(f"{root / PARAMS}: not a valid .npy file ({err})") from err
    if params.dtype != np.float32 or params.ndim != 2 or params.shape[1] != spec.num_params:
        raise ZooFormatError(
            f"{root / PARAMS}: expected float32 (N, {spec.num_params}), got {params.dtype} {params.shape}"
        )
    models = read_models(root, len(params))
    meta = {k: v for k, v in arch.items() if k not in ("spec", "layout", "num_params")}
    return Zoo(root, spec, params, models, meta)
