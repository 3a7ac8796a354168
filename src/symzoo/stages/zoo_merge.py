"""Stage ``zoo-merge``: a generated zoo from its shards, one checkpoint selected, filtered and split.

Reads the shard directories ``zoo-shard`` wrote, keeps checkpoint ``step`` (default: the last) of every
network (:func:`symzoo.zoo.shards.select_checkpoint`), filters and splits exactly as for a downloaded zoo
(:func:`symzoo.data.zoo.finalize_models`) and writes ``results/zoo/{zoo}/`` (:func:`symzoo.data.zoo.write_zoo`).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from symzoo.data.zoo import ARCH, MODELS, PARAMS, finalize_models, write_zoo
from symzoo.nets.spec import NetSpec
from symzoo.stages import common
from symzoo.zoo.shards import Shard, select_checkpoint

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "zoo_generate", "zoos.<name>")
    common.add_out(p, "zoo directory (results/zoo/<name>)")
    p.add_argument("shards", nargs="+", type=Path, help="shard directories, in order")


def main(args: argparse.Namespace) -> None:
    run(args.options, args.shards, args.out)
    log.info("wrote %s", args.out)


def read_shard(shard: Path) -> Shard:
    """A shard's spec, memory-mapped parameters (rows = checkpoints x networks) and rows."""
    for name in (PARAMS, MODELS, ARCH):
        if not (shard / name).is_file():
            raise FileNotFoundError(f"shard {shard}: missing {shard / name}")
    spec = NetSpec.from_dict(json.loads((shard / ARCH).read_text()))
    params, models = np.load(shard / PARAMS, mmap_mode="r"), pl.read_parquet(shard / MODELS)
    if params.shape != (len(models), spec.num_params):
        raise ValueError(f"shard {shard}: parameters {params.shape} for {len(models)} rows of {spec.num_params}")
    return Shard(str(shard), spec, params, models)


def run(options: Mapping, shards: Sequence[Path], out_dir: Path) -> Path:
    """Merge ``shards`` (in order) into the zoo ``options`` describes (validated against ``$defs/zoo_generate``)."""
    step = options["step"] if options["step"] is not None else max(options["checkpoints"])
    spec, params, models = select_checkpoint([read_shard(Path(s)) for s in shards], step)
    params, models = finalize_models(
        params, models, pl.col("test_accuracy") > options["min_accuracy"], options["fractions"], options["seed"]
    )
    meta = {"dataset": options["dataset"], "source": {"kind": "generate", "step": step, "shards": len(shards)}}
    return write_zoo(out_dir, spec, params, models, meta)
