"""Loss and accuracy barriers of interpolation curves, per pair and aggregated.

For a curve L(alpha) from network A (alpha = 0) to B (alpha = 1):
- ``loss_barrier``: max over alpha of L(alpha) - ((1 - alpha) L(0) + alpha L(1))  (Entezari et al. 2022);
- ``loss_barrier_mid``: max over alpha of L(alpha) - (L(0) + L(1)) / 2  (Ainsworth et al. 2023);
- ``acc_barrier`` / ``acc_barrier_mid``: the same for accuracy, as the drop below the line / the mean:
  max over alpha of ((1 - alpha) A(0) + alpha A(1)) - A(alpha), and (A(0) + A(1)) / 2 - min over alpha A(alpha).
All four are >= 0 up to the endpoints (alpha = 0 and 1 contribute 0 to the first and third).
"""

from __future__ import annotations

import polars as pl
from scipy import stats

METRICS = ("loss_barrier", "loss_barrier_mid", "acc_barrier", "acc_barrier_mid")


def pair_barriers(curves: pl.DataFrame, by: list[str] | tuple[str, ...] = ("pair_id",)) -> pl.DataFrame:
    """One row per curve (grouped by ``by``): the four barriers and the endpoints' own loss and accuracy."""
    by = list(by)
    alpha = pl.col("alpha")
    first, last = pl.col("alpha").arg_min(), pl.col("alpha").arg_max()
    loss0, loss1 = pl.col("loss").gather(first).first(), pl.col("loss").gather(last).first()
    acc0, acc1 = pl.col("accuracy").gather(first).first(), pl.col("accuracy").gather(last).first()
    return (
        curves.group_by(by, maintain_order=True)
        .agg(
            (pl.col("loss") - ((1 - alpha) * loss0 + alpha * loss1)).max().alias("loss_barrier"),
            (pl.col("loss").max() - (loss0 + loss1) / 2).alias("loss_barrier_mid"),
            (((1 - alpha) * acc0 + alpha * acc1) - pl.col("accuracy")).max().alias("acc_barrier"),
            ((acc0 + acc1) / 2 - pl.col("accuracy").min()).alias("acc_barrier_mid"),
            loss0.alias("loss_a"),
            loss1.alias("loss_b"),
            acc0.alias("accuracy_a"),
            acc1.alias("accuracy_b"),
        )
        .sort(by)
    )


def aggregate(per_pair: pl.DataFrame, by: list[str] | tuple[str, ...]) -> pl.DataFrame:
    """Mean, std, 95% confidence half-width (Student t) and n of every barrier, per group ``by``."""
    by = list(by)
    grouped = per_pair.group_by(by, maintain_order=True).agg(
        pl.len().alias("n"),
        *[pl.col(m).mean().alias(f"{m}_mean") for m in METRICS],
        *[pl.col(m).std().alias(f"{m}_std") for m in METRICS],
    )
    t = pl.Series([stats.t.ppf(0.975, n - 1) if n > 1 else float("nan") for n in grouped["n"]])
    return grouped.with_columns(
        [(pl.col(f"{m}_std") / pl.col("n").sqrt() * t).alias(f"{m}_ci95") for m in METRICS]
    ).sort(by)


def markdown(summary: pl.DataFrame, by: list[str] | tuple[str, ...]) -> str:
    """The aggregated table as markdown: mean ± 95% CI per barrier."""
    header = [*by, "n", *METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [str(row[c]) for c in by] + [str(row["n"])]
        cells += [f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_ci95']:.4f}" for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
