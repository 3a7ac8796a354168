"""Stage ``endpoints``: for one merge method, the two networks of every pair to interpolate between.

Writes ``results/merge/{zoo}/{method}/endpoints.npy``: float32 (n_pairs, 2, P), row i the endpoints (A, B) of
row i of ``pairs.parquet``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.merge.methods import MEDOID, check_method, endpoints
from symzoo.nets.spec import NetSpec
from symzoo.stages.common import FidelitySettings, load_inputs, train_medoid

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a method needs a model
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("pair_id", "model_a", "model_b")


def read_pairs(path: Path, num_networks: int) -> pl.DataFrame:
    """``pairs.parquet``, checked: the columns, and model ids that exist in the zoo."""
    try:
        pairs = pl.read_parquet(path)
    except Exception as err:  # polars raises several error types for a file that is not Parquet
        raise ValueError(f"{path}: not a readable pairs table ({err})") from err
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(PAIR_COLUMNS)}")
    ids = pl.concat([pairs["model_a"], pairs["model_b"]])
    if len(ids) and (ids.min() < 0 or ids.max() >= num_networks):
        raise ValueError(f"{path}: model ids must lie in 0..{num_networks - 1}, the zoo's networks")
    return pairs


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


def run(
    zoo_dir: Path,
    pairs_path: Path,
    data_path: Path,
    method: str,
    out: Path,
    ae: Autoencoder | None,
    fidelity: FidelitySettings,
    seed: int,
    device: torch.device,
) -> Path:
    check_method(method, ae, medoid=torch.zeros(0) if method == MEDOID else None)
    zoo, image_set = load_inputs(zoo_dir, data_path)
    pairs = read_pairs(pairs_path, len(zoo))
    medoid = None
    if method == MEDOID:
        model_id, medoid = train_medoid(zoo, image_set, fidelity, device)
        log.info("train medoid: network %d", model_id)
    a, b = (zoo.tensor(pairs[column].to_numpy(), device) for column in ("model_a", "model_b"))
    a, b = endpoints(method, zoo.spec, a, b, ae, medoid, seed)
    array = torch.stack([a, b], dim=1).float().cpu().numpy()
    if not np.isfinite(array).all():
        raise FloatingPointError(f"{out}: method {method!r} produced NaN/inf parameters; nothing written")
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
    log.info("wrote %s (%d pairs)", out, len(pairs))
    return out
