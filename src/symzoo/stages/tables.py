"""Stage ``tables``: every report table from the curves, orbit curves, histories and fidelity rows.

Inputs are named ``zoo/method=PATH`` (curves), ``zoo=PATH`` (orbit, merge-many), ``zoo/encoder=PATH``
(histories) and ``zoo/name=PATH`` (fidelity); the names become columns. Writes :data:`symzoo.report.TABLES` into
``results/tables/``, each atomically.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.data.tables import read_table
from symzoo.report import SUMMARY_MD
from symzoo.report.tables import build_tables
from symzoo.stages import common
from symzoo.stages.common import write_table

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_named(p, "--curves", "ZOO/METHOD=PATH", "interpolation curves of one method on one zoo", required=True)
    common.add_named(p, "--orbit", "ZOO=PATH", "orbit curves of one zoo", required=True)
    common.add_named(p, "--history", "ZOO/ENCODER=PATH", "an encoder's training history")
    common.add_named(p, "--fidelity", "ZOO/NAME=PATH", "fidelity rows of an encoder or of the controls")
    common.add_named(p, "--many", "ZOO=PATH", "merge-many table of one classifier zoo")
    common.add_out(p, "results/tables", flag="--out-dir")


def main(args: argparse.Namespace) -> None:
    names = (common.named(args, flag) for flag in ("--curves", "--orbit", "--history", "--fidelity", "--many"))
    print(run(*names, args.out_dir)[SUMMARY_MD])


def stack(paths: Mapping[str, Path], keys: tuple[str, ...]) -> pl.DataFrame:
    """Read tables named ``a/b`` (keys ('zoo', 'method'), say) and stack them with those columns in front."""
    frames = []
    for name, path in paths.items():
        values = name.split("/")
        if len(values) != len(keys):
            raise ValueError(f"table name {name!r} must have the form {'/'.join(keys)}")
        frame = read_table(path, "table")
        frames.append(frame.select(*[pl.lit(v).alias(k) for k, v in zip(keys, values)], pl.all()))
    if not frames:
        raise ValueError(f"no tables given for {'/'.join(keys)}")
    return pl.concat(frames, how="diagonal_relaxed")


def run(
    curves: Mapping[str, Path],
    orbit: Mapping[str, Path],
    histories: Mapping[str, Path],
    fidelity: Mapping[str, Path],
    many: Mapping[str, Path],
    out_dir: Path,
) -> dict[str, pl.DataFrame | str]:
    try:
        tables = build_tables(
            stack(curves, ("zoo", "method")),
            stack(orbit, ("zoo",)),
            stack(histories, ("zoo", "encoder")) if histories else pl.DataFrame(),
            stack(fidelity, ("zoo", "source")).drop("source") if fidelity else pl.DataFrame(),
            stack(many, ("zoo",)) if many else pl.DataFrame(),
        )
    except pl.exceptions.PolarsError as err:  # a table of the wrong shape (columns, types)
        raise ValueError(f"tables: an input table does not have the expected columns ({err})") from None
    for name, table in tables.items():
        write_table(table, Path(out_dir) / name)
    log.info("wrote %d tables to %s", len(tables), out_dir)
    return tables
