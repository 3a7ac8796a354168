"""The merging stages' files, readers beside writers: the pairs, a method's endpoints and the train medoid.

- ``results/merge/{zoo}/pairs.parquet``: ``pair_id``, ``model_a``, ``model_b`` (row indices of the zoo);
- ``results/merge/{zoo}/{method}/endpoints.npy``: float32 (pairs, 2, P), row i the endpoints (A, B) of pair i;
- ``results/merge/{zoo}/originals.parquet``: the pairs' original networks' own loss and score (``pair_id``,
  ``orig_loss_a``, ``orig_loss_b``, ``orig_score_a``, ``orig_score_b``), measured once for every method;
- ``results/merge/{zoo}/medoid.json``: the train split's medoid (``model_id``, and how it was chosen), computed
  once per zoo and read by every stage that needs it (the medoid method, the orbit experiment, the controls).

Every reader checks what it reads against the zoo and names the file in its errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.data.tables import read_table
from symzoo.nets.spec import NetSpec

PAIR_COLUMNS = ("pair_id", "model_a", "model_b")


def read_pairs(path: Path, num_networks: int) -> pl.DataFrame:
    """``pairs.parquet``, checked: the columns, and model ids that exist in the zoo."""
    pairs = read_table(path, "pairs table", PAIR_COLUMNS)
    ids = pl.concat([pairs["model_a"], pairs["model_b"]])
    if len(ids) and (ids.min() < 0 or ids.max() >= num_networks):
        raise ValueError(f"{path}: model ids must lie in 0..{num_networks - 1}, the zoo's networks")
    return pairs


def write_pairs(path: Path, pairs: pl.DataFrame) -> None:
    with atomic_path(path) as tmp:
        pairs.select(PAIR_COLUMNS).write_parquet(tmp)


ORIGINAL_COLUMNS = ("pair_id", "orig_loss_a", "orig_loss_b", "orig_score_a", "orig_score_b")


def read_originals(path: Path, pairs: pl.DataFrame) -> pl.DataFrame:
    """``originals.parquet``, checked: its columns, and one row per pair of ``pairs``, in their order."""
    frame = read_table(path, "originals table", ORIGINAL_COLUMNS)
    if frame["pair_id"].to_list() != pairs["pair_id"].to_list():
        raise ValueError(f"{path}: its pair_id column is not that of the pairs table (rerun `symzoo originals`)")
    return frame


def write_originals(path: Path, frame: pl.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.select(ORIGINAL_COLUMNS).write_parquet(tmp)


def read_endpoints(path: Path, spec: NetSpec, n_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The endpoints (A, B), each (n_pairs, P), of an ``endpoints.npy``, checked against the pairs and the spec."""
    try:
        array = np.load(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    if array.dtype != np.float32 or array.shape != (n_pairs, 2, spec.num_params):
        raise ValueError(
            f"{path}: expected float32 ({n_pairs}, 2, {spec.num_params}) endpoints for the pairs, "
            f"got {array.dtype} {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: endpoints with NaN/inf parameters")
    ends = torch.from_numpy(array)
    return ends[:, 0], ends[:, 1]


def write_endpoints(path: Path, a: torch.Tensor, b: torch.Tensor) -> None:
    """Endpoints (A, B), each (n_pairs, P), as float32 (n_pairs, 2, P); NaN/inf parameters are refused."""
    array = torch.stack([a, b], dim=1).float().cpu().numpy()
    if not np.isfinite(array).all():
        raise FloatingPointError(f"{path}: endpoints with NaN/inf parameters; nothing written")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def read_medoid(path: Path, num_networks: int) -> int:
    """The medoid's model id (a row of the zoo) from ``medoid.json``."""
    try:
        record = json.loads(Path(path).read_text())
        model_id = record["model_id"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such medoid record") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a medoid record (JSON with model_id): {err}") from None
    if not isinstance(model_id, int) or not 0 <= model_id < num_networks:
        raise ValueError(f"{path}: model_id {model_id!r} is not a network of the zoo (0..{num_networks - 1})")
    return model_id


def write_medoid(path: Path, model_id: int, **how: Any) -> None:
    """``medoid.json``: the model id and how it was chosen (``how``: JSON-ready keys)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"model_id": int(model_id), **how}, indent=2, sort_keys=True) + "\n")
