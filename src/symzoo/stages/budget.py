"""Stage ``budget-report``: the fidelity-vs-budget table and figure from the budget points' outputs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from symzoo.report.budget import budget_figure
from symzoo.stages import common
from symzoo.stages.common import save_figure, write_table

AXES = ("train_networks", "hidden", "epochs")


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_named(
        p,
        "--point",
        "ZOO/ENCODER/AXIS-VALUE=DIR",
        "a budget point's directory (model, summary, fidelity)",
        required=True,
    )
    common.add_named(p, "--controls", "ZOO=PATH", "a zoo's fidelity controls (the nearest-train oracle is drawn)")
    p.add_argument("--table", required=True, type=Path, help="results/tables/budget.parquet")
    common.add_out(p, "results/figures (writes budget.png and .pdf)", flag="--out-dir")


def main(args: argparse.Namespace) -> None:
    frame = run(common.named(args, "--point"), common.named(args, "--controls"), args.table, args.out_dir)
    print(frame.filter(frame["split"] == "test").drop("split"))


def read_point(name: str, directory: Path) -> pl.DataFrame:
    """The fidelity rows of one budget point ``zoo/encoder/<axis>-<value>`` with its budget columns."""
    zoo, encoder, point = name.split("/")
    axis, value = point.rsplit("-", 1)
    if axis not in AXES:
        raise ValueError(f"budget point {name!r}: axis {axis!r} is not one of {AXES}")
    summary = json.loads((directory / "summary.json").read_text())
    frame = pl.read_parquet(directory / "fidelity.parquet")
    if axis == "epochs":  # the validation fidelity along the run: the steps curve
        history = pl.read_parquet(directory / "history.parquet").filter(pl.col("val_kl").is_not_null())
        steps = history.select(
            pl.lit("val").alias("split"),
            pl.lit("steps").alias("axis"),
            pl.col("step").alias("value"),
            *[pl.col(f"val_{m}").alias(m) for m in ("kl", "ident_recon", "ident_orig", "acc_gap", "kendall_tau")],
        )
        frame = pl.concat(
            [frame.with_columns(pl.lit(axis).alias("axis"), pl.lit(int(value)).alias("value")), steps],
            how="diagonal_relaxed",
        )
    else:
        frame = frame.with_columns(pl.lit(axis).alias("axis"), pl.lit(int(value)).alias("value"))
    return frame.select(
        pl.lit(zoo).alias("zoo"),
        pl.lit(encoder).alias("encoder"),
        pl.col("axis"),
        pl.col("value").cast(pl.Int64),
        pl.lit(summary["steps"]).alias("steps"),
        pl.lit(summary["networks"]["train"]).alias("train_networks"),
        pl.lit(summary["settings"]["hidden"]).alias("hidden"),
        pl.all().exclude("axis", "value"),
    )


def run(points: Mapping[str, Path], controls: Mapping[str, Path], table: Path, figures: Path) -> pl.DataFrame:
    frame = pl.concat([read_point(name, Path(d)) for name, d in points.items()]).sort("zoo", "encoder", "axis", "value")
    oracle = None
    if controls:
        oracle = pl.concat([pl.read_parquet(p) for p in controls.values()]).filter(
            (pl.col("model") == "nearest_train") & (pl.col("split") == "test")
        )
    write_table(frame, Path(table))
    save_figure(budget_figure(frame, oracle), figures, "budget")
    return frame
