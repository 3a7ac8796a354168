"""Stage ``pairs``: disjoint pairs of the best test-split networks of a zoo (``results/merge/{zoo}/pairs.parquet``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from symzoo.data.merge import write_pairs
from symzoo.data.zoo import read_models, read_task
from symzoo.merge.interpolate import select_pairs
from symzoo.stages import common

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "merge", "the config's merge section")
    common.add_zoo(p)
    common.add_out(p, "pairs table (results/merge/<zoo>/pairs.parquet)")


def main(args: argparse.Namespace) -> None:
    o = args.options
    run(args.zoo, o["pairs"], o["top"], o["seed"], args.out)


def run(zoo_dir: Path, n_pairs: int, top: int, seed: int, out: Path) -> Path:
    pairs = select_pairs(read_models(zoo_dir), n_pairs, top, seed, read_task(zoo_dir))
    write_pairs(out, pairs)
    log.info("wrote %d pairs to %s", len(pairs), out)
    return out
