"""Stage ``interpolate``: loss, score and distance from the original networks along every pair's segment.

Writes ``results/merge/{zoo}/{method}/curves.parquet`` (one row per pair x alpha, see
:func:`symzoo.merge.interpolate.curves_table`), on the image set's test images.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from symzoo.atomic import atomic_path
from symzoo.data.merge import read_endpoints, read_originals, read_pairs
from symzoo.merge.interpolate import alphas, curves_table
from symzoo.stages import common
from symzoo.stages.common import load_inputs, pair_inputs

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p, "zoo directory (the pairs' original networks)")
    p.add_argument("--pairs", required=True, type=Path, help="pairs table")
    p.add_argument("--originals", required=True, type=Path, help="the pairs' originals.parquet (`symzoo originals`)")
    p.add_argument("--endpoints", required=True, type=Path, help="endpoints.npy of `symzoo endpoints`")
    common.add_data(p, "image set .npz (evaluated on its test split)")
    p.add_argument("--alphas", type=int, default=21, help="interpolation weights in [0, 1] (default 21)")
    common.add_out(p, "curves table (results/merge/<zoo>/<method>/curves.parquet)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.pairs, args.originals, args.endpoints, args.data, args.alphas, args.out, common.device(args))


def run(
    zoo_dir: Path,
    pairs_path: Path,
    originals_path: Path,
    endpoints_path: Path,
    data_path: Path,
    n_alphas: int,
    out: Path,
    device: torch.device,
) -> Path:
    zoo, image_set = load_inputs(zoo_dir, data_path)
    pairs = read_pairs(pairs_path, len(zoo))
    originals = read_originals(originals_path, pairs)
    a, b = (t.to(device) for t in read_endpoints(endpoints_path, zoo.spec, len(pairs)))
    ref_a, ref_b, x, y = pair_inputs(zoo, image_set, pairs, device)
    frame = curves_table(zoo.spec, pairs, a, b, ref_a, ref_b, alphas(n_alphas), x, y, originals)
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s (%d pairs x %d alphas)", out, len(pairs), n_alphas)
    return out
