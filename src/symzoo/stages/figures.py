"""Stage ``figures``: the report's figures (PNG and PDF), drawn from ``results/tables/`` alone."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from symzoo.data.tables import read_table
from symzoo.report import FIGURES
from symzoo.report.figures import DRAW, draw
from symzoo.stages import common
from symzoo.stages.common import save_figure

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", required=True, type=Path, help="results/tables")
    common.add_out(p, "results/figures", flag="--out-dir")


def main(args: argparse.Namespace) -> None:
    run(args.tables, args.out_dir)


def run(tables_dir: Path, out_dir: Path) -> list[Path]:
    drawn = []
    for name in FIGURES:
        path = Path(tables_dir) / DRAW[name][0]
        if not path.is_file():
            raise FileNotFoundError(f"figures: missing table {path}")
        drawn += save_figure(draw(name, read_table(path, "table")), out_dir, name)
    for path in drawn:
        log.info("wrote %s", path)
    return drawn
