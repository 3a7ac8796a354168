"""Loss and score barriers of interpolation curves, per pair and aggregated, with the endpoints' fidelity.

The names are task-neutral, like the curves' (:mod:`symzoo.merge.interpolate`): ``loss`` is the test
cross-entropy of a classifier and the render MSE of an INR, ``score`` its test accuracy or PSNR (dB), ``dist`` the
KL between predictions or the MSE between renders (units per task: :mod:`symzoo.report.units`).

For a curve L(alpha) from network A (alpha = 0) to B (alpha = 1), with score S(alpha):
- ``loss_barrier``: max over alpha of L(alpha) - ((1 - alpha) L(0) + alpha L(1))  (Entezari et al. 2022);
- ``loss_barrier_mid``: max over alpha of L(alpha) - (L(0) + L(1)) / 2  (Ainsworth et al. 2023);
- ``score_barrier`` / ``score_barrier_mid``: the same for the score, as the drop below the line / the mean:
  max over alpha of ((1 - alpha) S(0) + alpha S(1)) - S(alpha), and (S(0) + S(1)) / 2 - min over alpha S(alpha).
All four are >= 0 up to the endpoints (alpha = 0 and 1 contribute 0 to the first and third).

A barrier is measured against the curve's own endpoints, so replacing both endpoints by one good network wins
it. With the original networks' losses L_A, L_B and the distance of each path network from the originals
(``dist_a``, ``dist_b``, from :func:`symzoo.merge.interpolate.curves`) every pair also gets:
- ``loss_barrier_orig``: max over alpha of L(alpha) - ((1 - alpha) L_A + alpha L_B): the path against the
  originals' losses (negative when the path is better than the originals);
- ``endpoint_dist``: mean of dist(A, endpoint A) and dist(B, endpoint B) (0 for exact alignments);
- ``endpoint_score_gap``: mean of score(endpoint) - score(original) over both ends;
- ``mid_dist``: the midpoint's (alpha nearest 0.5) mean distance from its two parents A and B;
- ``mid_score_gap``: the midpoint's score minus the better original's (0 or above: the merge keeps the better
  parent's score).
"""

from __future__ import annotations

import polars as pl
from scipy import stats

BARRIERS = ("loss_barrier", "loss_barrier_mid", "score_barrier", "score_barrier_mid")
FIDELITY = ("loss_barrier_orig", "endpoint_dist", "endpoint_score_gap", "mid_dist", "mid_score_gap")
METRICS = (*BARRIERS, *FIDELITY)


VALUES = ("alpha", "loss", "score", "dist_a", "dist_b", "orig_loss_a", "orig_loss_b", "orig_score_a", "orig_score_b")


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
    """One row per curve (grouped by ``by``): barriers, endpoint fidelity and the endpoints' loss and score
    (``loss_a``, ``loss_b``, ``score_a``, ``score_b``, and the originals' ``orig_*``).

    ``curves`` has ``alpha``, ``loss``, ``score``, ``dist_a``, ``dist_b`` and the originals' ``orig_loss_a``,
    ``orig_loss_b``, ``orig_score_a``, ``orig_score_b`` (constant within a curve).
    """
    by = list(by)
    check_complete(curves, by)
    alpha = pl.col("alpha")
    first, last = alpha.arg_min(), alpha.arg_max()
    middle = (alpha - 0.5).abs().arg_min()
    loss0, loss1 = pl.col("loss").gather(first).first(), pl.col("loss").gather(last).first()
    score0, score1 = pl.col("score").gather(first).first(), pl.col("score").gather(last).first()
    orig_loss_a, orig_loss_b = pl.col("orig_loss_a").first(), pl.col("orig_loss_b").first()
    orig_score_a, orig_score_b = pl.col("orig_score_a").first(), pl.col("orig_score_b").first()
    dist_a0, dist_b1 = pl.col("dist_a").gather(first).first(), pl.col("dist_b").gather(last).first()
    return (
        curves.group_by(by, maintain_order=True)
        .agg(
            (pl.col("loss") - ((1 - alpha) * loss0 + alpha * loss1)).max().alias("loss_barrier"),
            (pl.col("loss").max() - (loss0 + loss1) / 2).alias("loss_barrier_mid"),
            (((1 - alpha) * score0 + alpha * score1) - pl.col("score")).max().alias("score_barrier"),
            ((score0 + score1) / 2 - pl.col("score").min()).alias("score_barrier_mid"),
            (pl.col("loss") - ((1 - alpha) * orig_loss_a + alpha * orig_loss_b)).max().alias("loss_barrier_orig"),
            ((dist_a0 + dist_b1) / 2).alias("endpoint_dist"),
            ((score0 - orig_score_a + score1 - orig_score_b) / 2).alias("endpoint_score_gap"),
            ((pl.col("dist_a").gather(middle).first() + pl.col("dist_b").gather(middle).first()) / 2).alias("mid_dist"),
            (pl.col("score").gather(middle).first() - pl.max_horizontal(orig_score_a, orig_score_b)).alias(
                "mid_score_gap"
            ),
            loss0.alias("loss_a"),
            loss1.alias("loss_b"),
            score0.alias("score_a"),
            score1.alias("score_b"),
            orig_loss_a,
            orig_loss_b,
            orig_score_a,
            orig_score_b,
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
