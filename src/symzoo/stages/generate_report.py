"""Stage ``generate-report``: the generation tables (``generation.parquet``, ``generation_ensembles.parquet``,
``generation_targets.parquet``, ``generation.md``) and figures (``generation_accuracy``, ``generation_novelty``,
``generation_bma``), from every model and control folder of ``results/generate/{zoo}/``
(:mod:`symzoo.report.generation`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.data.networks import read_summary
from symzoo.data.tables import read_table
from symzoo.report.generation import figures, markdown, table, targets
from symzoo.stages import common

TABLE, ENSEMBLES, TARGETS, MARKDOWN = (
    "generation.parquet", "generation_ensembles.parquet", "generation_targets.parquet", "generation.md",
)  # fmt: skip
FIGURES = ("generation_accuracy", "generation_novelty", "generation_bma")


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_report(p, "a model or control folder of `symzoo generate`")


def main(args: argparse.Namespace) -> None:
    print(run(common.results_by_zoo(args), args.tables, args.figures))


def run(results: Mapping[str, Path], tables_dir: Path, figures_dir: Path) -> str:
    """``results``: ``zoo/model=DIR`` of every folder."""
    frame, ens = table({name: read_summary(Path(folder) / "summary.json") for name, folder in results.items()})
    networks = pl.concat(
        [
            read_table(Path(folder) / "networks.parquet", "networks table", ("accuracy",)).with_columns(
                zoo=pl.lit(name.split("/")[0]), model=pl.lit(name.split("/", 1)[1])
            )
            for name, folder in results.items()
        ],
        how="diagonal",
    )
    goals = targets(frame, ens)
    text = markdown(frame, ens, goals)
    common.write_table(frame, Path(tables_dir) / TABLE)
    common.write_table(ens, Path(tables_dir) / ENSEMBLES)
    common.write_table(goals, Path(tables_dir) / TARGETS)
    common.write_table(text, Path(tables_dir) / MARKDOWN)
    for name, fig in figures(frame, ens, networks).items():
        common.save_figure(fig, figures_dir, name)
    return text
