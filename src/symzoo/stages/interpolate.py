"""Stage ``interpolate``: loss, accuracy and KL from the original networks along every pair's segment.

Writes ``results/merge/{zoo}/{method}/curves.parquet`` (one row per pair x alpha, see
:func:`symzoo.merge.interpolate.curves_table`), on the image set's test images.
"""

from __future__ import annotations

import logging
import argparse
from pathlib import Path

import torch

from symzoo.atomic import atomic_path
from symzoo.merge.interpolate import alphas, curves_table
from symzoo.data.merge import read_endpoints, read_pairs
from symzoo.stages import common
from symzoo.stages.common import load_inputs, measured_on

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p, "zoo directory (the pairs' original networks)")
    p.add_argument("--pairs", required=True, type=Path, help="pairs table")
    p.add_argument("--endpoints", required=True, type=Path, help="endpoints.npy of `symzoo endpoints`")
    common.add_data(p, "image set .npz (evaluated on its test split)")
    p.add_argument("--alphas", type=int, default=21, help="interpolation weights in [0, 1] (default 21)")
    common.add_out(p, "curves table (results/merge/<zoo>/<method>/curves.parquet)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.pairs, args.endpoints, args.data, args.alphas, args.out, common.device(args))


def run(
    zoo_dir: Path,
    pairs_path: Path,
    endpoints_path: Path,
    data_path: Path,
    n_alphas: int,
    out: Path,
    device: torch.device,
) -> Path:
    zoo, image_set = load_inputs(zoo_dir, data_path)
    pairs = read_pairs(pairs_path, len(zoo))
    a, b = (t.to(device) for t in read_endpoints(endpoints_path, zoo.spec, len(pairs)))
    ref_a, ref_b = (zoo.tensor(pairs[column].to_numpy(), device) for column in ("model_a", "model_b"))
    if zoo.spec.is_inr:  # the pixel grid, and the ground-truth images of each pair's A and B
        x, _ = measured_on(zoo, image_set, "test", 0, 0, device)
        y = torch.stack(
            [measured_on(zoo, image_set, "test", 0, 0, device, pairs[c].to_numpy())[1] for c in ("model_a", "model_b")]
        )
    else:
        x, y = (torch.from_numpy(v).to(device) for v in image_set.split("test"))
    frame = curves_table(zoo.spec, pairs, a, b, ref_a, ref_b, alphas(n_alphas), x, y)
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s (%d pairs x %d alphas)", out, len(pairs), n_alphas)
    return out
