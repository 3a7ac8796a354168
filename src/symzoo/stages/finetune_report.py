"""Stage ``finetune-report``: the fine-tuning table (``finetune.parquet``, ``finetune.md``) and figure.

Reads every method folder of ``results/finetune/{zoo}/`` (its ``summary.json``, and an operator's
``history.parquet``) and writes ``results/tables/finetune.parquet`` (one row per zoo and method),
``finetune_targets.parquet``, ``finetune.md`` and ``results/figures/finetune.{png,pdf}``
(:mod:`symzoo.report.finetune`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.data.networks import read_summary
from symzoo.data.tables import read_table
from symzoo.report.finetune import figure, markdown, table, targets
from symzoo.stages import common

TABLE, TARGETS, MARKDOWN, FIGURE = "finetune.parquet", "finetune_targets.parquet", "finetune.md", "finetune"
HISTORY = "history.parquet"


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_report(p, "a method folder of `symzoo finetune`")


def main(args: argparse.Namespace) -> None:
    print(run(common.results_by_zoo(args), args.tables, args.figures))


def run(results: Mapping[str, Path], tables_dir: Path, figures_dir: Path) -> str:
    """``results``: ``zoo/method=DIR`` of every method folder."""
    frame = table({name: read_summary(Path(folder) / "summary.json") for name, folder in results.items()})
    histories = [
        read_table(Path(folder) / HISTORY, "history table").with_columns(
            zoo=pl.lit(name.split("/")[0]), method=pl.lit(name.split("/", 1)[1])
        )
        for name, folder in results.items()
        if (Path(folder) / HISTORY).is_file()
    ]
    history = pl.concat(histories) if histories else pl.DataFrame(schema={"zoo": pl.String, "method": pl.String})
    goals = targets(frame)
    text = markdown(frame, goals)
    common.write_table(frame, Path(tables_dir) / TABLE)
    common.write_table(goals, Path(tables_dir) / TARGETS)
    common.write_table(text, Path(tables_dir) / MARKDOWN)
    common.save_figure(figure(frame, history), figures_dir, FIGURE)
    return text
