"""Stage ``figures``: the report's figures (PNG and PDF), drawn from ``results/tables/`` alone."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from symzoo.atomic import atomic_path
from symzoo.report import FIGURES, FORMATS
from symzoo.report.figures import DRAW, draw, plt

log = logging.getLogger(__name__)


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.<format>`` for every format, each atomically; closes the figure."""
    paths = []
    for fmt in FORMATS:
        path = Path(out_dir) / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            # no creation date (PDF) and one software tag: the same tables give the same bytes
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": "symzoo"}
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def run(tables_dir: Path, out_dir: Path) -> list[Path]:
    drawn = []
    for name in FIGURES:
        path = Path(tables_dir) / DRAW[name][0]
        if not path.is_file():
            raise FileNotFoundError(f"figures: missing table {path}")
        drawn += save(draw(name, pl.read_parquet(path)), out_dir, name)
    for path in drawn:
        log.info("wrote %s", path)
    return drawn
