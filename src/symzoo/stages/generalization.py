"""Stage ``generalization``: the generalization table, its summary and markdown, and the figure."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.data.tables import read_table
from symzoo.report.generalization import figure, markdown, per_seed, summary
from symzoo.stages import common
from symzoo.stages.common import save_figure, write_table

log = logging.getLogger(__name__)

TABLE, SUMMARY, MARKDOWN, FIGURE = (
    "generalization.parquet",
    "generalization_summary.parquet",
    "generalization.md",
    "generalization",
)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_named(
        p, "--predictions", "ZOO/MODEL/SEED=PATH", "a predictions.parquet of `symzoo predict`", required=True
    )
    p.add_argument("--tables", required=True, type=Path, help="results/tables")
    p.add_argument("--figures", required=True, type=Path, help="results/figures")


def main(args: argparse.Namespace) -> None:
    print(run(common.named(args, "--predictions"), args.tables, args.figures))


def run(predictions: Mapping[str, Path], tables_dir: Path, figures_dir: Path) -> str:
    """``predictions``: ``zoo/model/seed=PATH`` of every predictions.parquet."""
    frames = []
    for name, path in predictions.items():
        zoo, model, seed = name.split("/")
        frames.append(
            read_table(path, "predictions table").with_columns(
                zoo=pl.lit(zoo), model=pl.lit(model), seed=pl.lit(int(seed))
            )
        )
    stacked = pl.concat(frames)
    table = per_seed(stacked)
    text = markdown(summary(table))
    write_table(table, Path(tables_dir) / TABLE)
    write_table(summary(table), Path(tables_dir) / SUMMARY)
    write_table(text, Path(tables_dir) / MARKDOWN)
    save_figure(figure(stacked, table), figures_dir, FIGURE)
    return text
