"""Parquet tables of the merging experiments (polars), plus a markdown summary and a JSON for DVC metrics.

Everything the figures need is in ``results/tables/``: the stacked curves, per-pair and aggregated barriers,
the orbit experiment and the encoders' training histories.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.atomic import atomic_path
from symzoo.merge.barrier import METRICS, aggregate, markdown, pair_barriers

CURVES = "curves.parquet"
BARRIERS = "barriers.parquet"
SUMMARY = "barriers_summary.parquet"
SUMMARY_MD = "barriers.md"
METRICS_JSON = "metrics.json"
ORBIT_CURVES = "orbit_curves.parquet"
ORBIT = "orbit_barriers.parquet"
ORBIT_SUMMARY = "orbit_summary.parquet"
TRAINING = "training.parquet"
INTERPOLATION_CSV = "interpolation.csv"
OUTPUTS = (
    CURVES,
    BARRIERS,
    SUMMARY,
    SUMMARY_MD,
    METRICS_JSON,
    ORBIT_CURVES,
    ORBIT,
    ORBIT_SUMMARY,
    TRAINING,
    INTERPOLATION_CSV,
)


def _stack(paths: Mapping[str, Path], keys: tuple[str, ...]) -> pl.DataFrame:
    """Read tables named ``a/b`` (keys ('zoo', 'method'), say) and stack them with those columns in front."""
    frames = []
    for name, path in paths.items():
        values = name.split("/")
        if len(values) != len(keys):
            raise ValueError(f"table name {name!r} must have the form {'/'.join(keys)}")
        frame = pl.read_parquet(path)
        frames.append(frame.select(*[pl.lit(v).alias(k) for k, v in zip(keys, values)], pl.all()))
    if not frames:
        raise ValueError(f"no tables given for {'/'.join(keys)}")
    return pl.concat(frames, how="diagonal_relaxed")


def _write(table: pl.DataFrame | str, path: Path) -> None:
    with atomic_path(path) as tmp:
        if isinstance(table, str):
            tmp.write_text(table)
        elif path.suffix == ".csv":
            table.write_csv(tmp)
        else:
            table.write_parquet(tmp)


def mean_curves(curves: pl.DataFrame) -> pl.DataFrame:
    """The mean interpolation curve (over pairs) per zoo, method, split and alpha: DVC's plot data (CSV)."""
    keys = ["zoo", "method", "split", "alpha"]
    return curves.group_by(keys).agg(pl.col("loss").mean(), pl.col("accuracy").mean()).sort(keys)


def write_tables(
    curves: Mapping[str, Path], orbit: Mapping[str, Path], histories: Mapping[str, Path], out_dir: Path
) -> None:
    """Barrier tables from ``zoo/method`` curves, ``zoo`` orbit curves and ``zoo/encoder`` histories."""
    all_curves = _stack(curves, ("zoo", "method"))
    per_pair = pair_barriers(all_curves, by=("zoo", "method", "pair_id"))
    summary = aggregate(per_pair, by=("zoo", "method"))
    orbit_curves = _stack(orbit, ("zoo",))
    orbit_pairs = pair_barriers(orbit_curves, by=("zoo", "kind", "method", "pair_id"))
    orbit_summary = aggregate(orbit_pairs, by=("zoo", "kind", "method"))
    training = _stack(histories, ("zoo", "encoder")) if histories else pl.DataFrame()
    metrics = {
        f"{row['zoo']}/{row['method']}": {m: row[f"{m}_mean"] for m in METRICS} for row in summary.iter_rows(named=True)
    }
    text = "# Barriers (mean ± 95% CI over pairs)\n\n" + markdown(summary, ("zoo", "method"))
    text += "\n# Orbit barriers (network vs. a random symmetry transform of itself)\n\n"
    text += markdown(orbit_summary, ("zoo", "kind", "method"))
    for table, name in (
        (all_curves, CURVES),
        (mean_curves(all_curves), INTERPOLATION_CSV),
        (per_pair, BARRIERS),
        (summary, SUMMARY),
        (orbit_curves, ORBIT_CURVES),
        (orbit_pairs, ORBIT),
        (orbit_summary, ORBIT_SUMMARY),
        (training, TRAINING),
        (text, SUMMARY_MD),
        (json.dumps(metrics, indent=2) + "\n", METRICS_JSON),
    ):
        _write(table, Path(out_dir) / name)
