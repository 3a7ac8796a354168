"""Stage ``endpoints``: for one merge method, the two networks of every pair to interpolate between.

Writes ``results/merge/{zoo}/{method}/endpoints.npy`` (:func:`symzoo.data.merge.write_endpoints`): float32
(n_pairs, 2, P), row i the endpoints (A, B) of row i of ``pairs.parquet``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from symzoo.data.merge import read_pairs, write_endpoints
from symzoo.data.zoo import read_zoo
from symzoo.merge.methods import NEEDS_MEDOID, check_method, endpoints
from symzoo.stages import common

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a method needs a model
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        required=True,
        help="naive, rebasin, rebasin_scaling, canonical, align_reference, medoid, ae_<encoder>, ae_align_<encoder>",
    )
    common.add_zoo(p)
    p.add_argument("--pairs", required=True, type=Path, help="pairs table (results/merge/<zoo>/pairs.parquet)")
    common.add_named(p, "--model", "ae_NAME=PATH", "the autoencoder's model.pt (method ae_NAME)")
    common.add_medoid(p)
    p.add_argument("--seed", type=int, default=0, help="seed of re-basin's sweep order")
    common.add_out(p, "endpoints.npy: float32 (pairs, 2, P)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    device = common.device(args)
    model = common.one_model(args, device)
    if model is not None and model[0] != args.method:
        raise ValueError(f"--model {model[0]}=...: the model is named for method {model[0]!r}, not {args.method!r}")
    ae = model[1] if model else None
    run(args.zoo, args.pairs, args.method, args.out, ae, args.medoid, args.seed, device)


def run(
    zoo_dir: Path,
    pairs_path: Path,
    method: str,
    out: Path,
    ae: Autoencoder | None,
    medoid_path: Path | None,
    seed: int,
    device: torch.device,
) -> Path:
    """The endpoints of ``method``; an autoencoder method needs ``ae``, the medoid control and align_reference
    ``medoid_path``."""
    if method in NEEDS_MEDOID and medoid_path is None:
        raise ValueError(f"method {method!r} needs the zoo's medoid.json (--medoid)")
    check_method(method, ae, medoid=torch.zeros(0) if method in NEEDS_MEDOID else None)
    zoo = read_zoo(zoo_dir)
    pairs = read_pairs(pairs_path, len(zoo))
    medoid = common.load_medoid(medoid_path, zoo, device) if method in NEEDS_MEDOID else None
    a, b = (zoo.tensor(pairs[column].to_numpy(), device) for column in ("model_a", "model_b"))
    a, b = endpoints(method, zoo.spec, a, b, ae, medoid, seed)
    try:
        write_endpoints(out, a, b)
    except FloatingPointError as err:
        raise FloatingPointError(f"method {method!r}: {err}") from None
    log.info("wrote %s (%d pairs)", out, len(pairs))
    return out
