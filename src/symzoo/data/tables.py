"""Reading a Parquet table with an error that names the file (not polars' traceback)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def read_table(path: Path, what: str, columns: tuple[str, ...] = ()) -> pl.DataFrame:
    """The Parquet table ``path`` (a ``what``), with at least ``columns``; errors name the file."""
    try:
        frame = pl.read_parquet(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except Exception as err:  # polars raises several error types for a file that is not Parquet
        raise ValueError(f"{path}: not a readable {what} (Parquet) file: {str(err).splitlines()[0]}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(columns)}")
    return frame
