"""Command ``zoo-info``: validate a zoo (every parameter finite) and summarise it (networks per split, score)."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from symzoo.data.zoo import read_zoo
from symzoo.merge.interpolate import score_column


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("zoo", type=Path, help="zoo directory")


def main(args: argparse.Namespace) -> None:
    print(run(args.zoo))


def run(zoo_dir: Path) -> str:
    """The summary as text; a zoo with a non-finite parameter is an error that names the network."""
    zoo = read_zoo(zoo_dir)
    zoo.check_finite()
    score = score_column(zoo.spec.task)  # test accuracy, or the PSNR of an INR zoo
    summary = (
        zoo.models.group_by("split", "kept")
        .agg(pl.len().alias("n"), pl.col(score).mean().alias(f"mean_{score}"))
        .sort("split", "kept", nulls_last=True)
    )
    return f"{zoo_dir}: {len(zoo)} networks of {zoo.spec.num_params} parameters, {zoo.spec}\n{summary}"
