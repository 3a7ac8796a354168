"""Stage ``tables``: every report table from the curves, orbit curves, histories and fidelity rows.

Inputs are named ``zoo/method=PATH`` (curves), ``zoo=PATH`` (orbit), ``zoo/encoder=PATH`` (histories) and
``zoo/name=PATH`` (fidelity); the names become columns. Writes :data:`symzoo.report.TABLES` into
``results/tables/``, each atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.atomic import atomic_path
from symzoo.report.tables import build_tables

log = logging.getLogger(__name__)


def stack(paths: Mapping[str, Path], keys: tuple[str, ...]) -> pl.DataFrame:
    """Read tables named ``a/b`` (keys ('zoo', 'method'), say) and stack them with those columns in front."""
    frames = []
    for name, path in paths.items():
        values = name.split("/")
        if len(values) != len(keys):
            raise ValueError(f"table name {name!r} must have the form {'/'.join(keys)}")
        frame = read_parquet(path, "table")
        frames.append(frame.select(*[pl.lit(v).alias(k) for k, v in zip(keys, values)], pl.all()))
    if not frames:
        raise ValueError(f"no tables given for {'/'.join(keys)}")
    return pl.concat(frames, how="diagonal_relaxed")


def read_parquet(path: Path, what: str) -> pl.DataFrame:
    """A Parquet file, or an error that names it (not polars' traceback)."""
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except Exception as err:  # polars raises several error types for a file that is not Parquet
        raise ValueError(f"{path}: not a readable {what} (Parquet) file: {str(err).splitlines()[0]}") from None


def write(table: pl.DataFrame | str, path: Path) -> None:
    """One table, atomically: text as is, ``.csv`` as CSV, anything else as Parquet."""
    with atomic_path(path) as tmp:
        if isinstance(table, str):
            tmp.write_text(table)
        elif path.suffix == ".csv":
            table.write_csv(tmp)
        else:
            table.write_parquet(tmp)


def run(
    curves: Mapping[str, Path],
    orbit: Mapping[str, Path],
    histories: Mapping[str, Path],
    fidelity: Mapping[str, Path],
    out_dir: Path,
) -> dict[str, pl.DataFrame | str]:
    try:
        tables = build_tables(
            stack(curves, ("zoo", "method")),
            stack(orbit, ("zoo",)),
            stack(histories, ("zoo", "encoder")) if histories else pl.DataFrame(),
            stack(fidelity, ("zoo", "source")).drop("source") if fidelity else pl.DataFrame(),
        )
    except pl.exceptions.PolarsError as err:  # a table of the wrong shape (columns, types)
        raise ValueError(f"tables: an input table does not have the expected columns ({err})") from None
    for name, table in tables.items():
        write(table, Path(out_dir) / name)
    log.info("wrote %d tables to %s", len(tables), out_dir)
    return tables
