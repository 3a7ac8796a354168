"""Stage ``generalization``: the generalization table, its summary and markdown, and the figure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.report.generalization import figure, markdown, per_seed, summary
from symzoo.stages.figures import save
from symzoo.stages.tables import read_parquet, write

log = logging.getLogger(__name__)

TABLE, SUMMARY, MARKDOWN, FIGURE = (
    "generalization.parquet",
    "generalization_summary.parquet",
    "generalization.md",
    "generalization",
)


def run(predictions: Mapping[str, Path], tables_dir: Path, figures_dir: Path) -> str:
    """``predictions``: ``zoo/model/seed=PATH`` of every predictions.parquet."""
    frames = []
    for name, path in predictions.items():
        zoo, model, seed = name.split("/")
        frames.append(
            read_parquet(path, "predictions table").with_columns(
                zoo=pl.lit(zoo), model=pl.lit(model), seed=pl.lit(int(seed))
            )
        )
    stacked = pl.concat(frames)
    table = per_seed(stacked)
    text = markdown(summary(table))
    write(table, Path(tables_dir) / TABLE)
    write(summary(table), Path(tables_dir) / SUMMARY)
    write(text, Path(tables_dir) / MARKDOWN)
    save(figure(stacked, table), figures_dir, FIGURE)
    return text
