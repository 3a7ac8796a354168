"""Stage ``originals``: the loss and score of every pair's two original networks, once per zoo.

Writes ``results/merge/{zoo}/originals.parquet`` (:func:`symzoo.merge.interpolate.originals_table`), on the
image set's test images (an INR zoo: each INR against its own image); every method's ``interpolate`` reads it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from symzoo.data.merge import read_pairs, write_originals
from symzoo.merge.interpolate import originals_table
from symzoo.stages import common
from symzoo.stages.common import load_inputs, pair_inputs

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p)
    p.add_argument("--pairs", required=True, type=Path, help="pairs table")
    common.add_data(p, "image set .npz (evaluated on its test split)")
    common.add_out(p, "results/merge/<zoo>/originals.parquet")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.pairs, args.data, args.out, common.device(args))


def run(zoo_dir: Path, pairs_path: Path, data_path: Path, out: Path, device: torch.device) -> Path:
    zoo, image_set = load_inputs(zoo_dir, data_path)
    pairs = read_pairs(pairs_path, len(zoo))
    write_originals(out, originals_table(zoo.spec, pairs, *pair_inputs(zoo, image_set, pairs, device)))
    log.info("wrote %s (%d pairs)", out, len(pairs))
    return out
