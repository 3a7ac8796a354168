"""Loss and accuracy barriers of interpolation curves, per pair and aggregated, with the endpoints' fidelity.

For a curve L(alpha) from network A (alpha = 0) to B (alpha = 1):
- ``loss_barrier``: max over alpha of L(alpha) - ((1 - alpha) L(0) + alpha L(1))  (Entezari et al. 2022);
- ``loss_barrier_mid``: max over alpha of L(alpha) - (L(0) + L(1)) / 2  (Ainsworth et al. 2023);
- ``acc_barrier`` / ``acc_barrier_mid``: the same for accuracy, as the drop below the line / the mean:
  max over alpha of ((1 - alpha) A(0) + alpha A(1)) - A(alpha), and (A(0) + A(1)) / 2 - min over alpha A(alpha).
All four are >= 0 up to the endpoints (alpha = 0 and 1 contribute 0 to the first and third).

A barrier is measured against the curve's own endpoints, so replacing both endpoints by one good network wins
it. With the original networks' losses L_A, L_B and the KL of each path network from the originals (``kl_a``,
``kl_b``, from :func:`symzoo.merge.interpolate.curves`) every pair also gets:
- ``loss_barrier_orig``: max over alpha of L(alpha) - ((1 - alpha) L_A + alpha L_B): the path against the
  originals' losses (negative when the path is better than the originals);
- ``endpoint_kl``: mean of KL(A || endpoint A) and KL(B || endpoint B) (0 for exact alignments);
- ``endpoint_acc_gap``: mean of accuracy(endpoint) - accuracy(original) over both ends;
- ``mid_kl``: the midpoint's (alpha nearest 0.5) mean KL from its two parents A and B.
"""

from __future__ import annotations

import polars as pl
from scipy import stats

BARRIERS = ("loss_barrier", "loss_barrier_mid", "acc_barrier", "acc_barrier_mid")
FIDELITY = ("loss_barrier_orig", "endpoint_kl", "endpoint_acc_gap", "mid_kl")
METRICS = (*BARRIERS, *FIDELITY)


VALUES = ("alpha", "loss", "accuracy", "kl_a", "kl_b", "orig_loss_a", "orig_loss_b", "orig_acc_a", "orig_acc_b")


def check_complete(curves: pl.DataFrame, by: list[str]) -> None:
    """An error naming the curves and points that are NaN or missing: polars' max and min skip them, which
    would change a barrier silently."""
    missing = [c for c in VALUES if c not in curves.columns]
    if missing:
        raise ValueError(f"curves: missing column(s) {missing}")
    bad = curves.filter(pl.any_horizontal([pl.col(c).is_null() | pl.col(c).is_nan() for c in VALUES]))
    if len(bad):
        where = bad.select(*by, "alpha").unique(maintain_order=True).head(5).to_dicts()
        raise ValueError(
            f"curves: {len(bad)} point(s) with NaN or missing values, e.g. at {where}; no barrier is computed"
        )


def pair_barriers(curves: pl.DataFrame, by: list[str] | tuple[str, ...] = ("pair_id",)) -> pl.DataFrame:
    """One row per curve (grouped by ``by``): barriers, endpoint fidelity and the endpoints' loss and accuracy.

    ``curves`` has ``alpha``, ``loss``, ``accuracy``, ``kl_a``, ``kl_b`` and the originals' ``orig_loss_a``,
    ``orig_loss_b``, ``orig_acc_a``, ``orig_acc_b`` (constant within a curve).
    """
    by = list(by)
    check_complete(curves, by)
    alpha = pl.col("alpha")
    first, last = alpha.arg_min(), alpha.arg_max()
    middle = (alpha - 0.5).abs().arg_min()
    loss0, loss1 = pl.col("loss").gather(first).first(), pl.col("loss").gather(last).first()
    acc0, acc1 = pl.col("accuracy").gather(first).first(), pl.col("accuracy").gather(last).first()
    orig_loss_a, orig_loss_b = pl.col("orig_loss_a").first(), pl.col("orig_loss_b").first()
    orig_acc_a, orig_acc_b = pl.col("orig_acc_a").first(), pl.col("orig_acc_b").first()
    kl_a0, kl_b1 = pl.col("kl_a").gather(first).first(), pl.col("kl_b").gather(last).first()
    return (
        curves.group_by(by, maintain_order=True)
        .agg(
            (pl.col("loss") - ((1 - alpha) * loss0 + alpha * loss1)).max().alias("loss_barrier"),
            (pl.col("loss").max() - (loss0 + loss1) / 2).alias("loss_barrier_mid"),
            (((1 - alpha) * acc0 + alpha * acc1) - pl.col("accuracy")).max().alias("acc_barrier"),
            ((acc0 + acc1) / 2 - pl.col("accuracy").min()).alias("acc_barrier_mid"),
            (pl.col("loss") - ((1 - alpha) * orig_loss_a + alpha * orig_loss_b)).max().alias("loss_barrier_orig"),
            ((kl_a0 + kl_b1) / 2).alias("endpoint_kl"),
            ((acc0 - orig_acc_a + acc1 - orig_acc_b) / 2).alias("endpoint_acc_gap"),
            ((pl.col("kl_a").gather(middle).first() + pl.col("kl_b").gather(middle).first()) / 2).alias("mid_kl"),
            loss0.alias("loss_a"),
            loss1.alias("loss_b"),
            acc0.alias("accuracy_a"),
            acc1.alias("accuracy_b"),
            orig_loss_a,
            orig_loss_b,
            orig_acc_a,
            orig_acc_b,
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


def markdown(summary: pl.DataFrame, by: list[str] | tuple[str, ...], metrics: tuple[str, ...] = METRICS) -> str:
    """The aggregated table as markdown: mean ± 95% CI per metric."""
    header = [*by, "n", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [str(row[c]) for c in by] + [str(row["n"])]
        cells += [f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_ci95']:.4f}" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
