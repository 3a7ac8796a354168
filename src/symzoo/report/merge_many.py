"""The merge-many table (:mod:`symzoo.merge.many`) aggregated, its markdown, and the targets of merging in a frame.

``merge_many_summary``: per zoo, K and method, the merged networks' accuracy, loss and KL from their parents
(mean and 95% CI over groups), with the parents' mean and best, and the merged accuracy minus the parents' mean
(``over_parents``) and minus MergeMany's on the same groups (``over_merge_many``).
"""

from __future__ import annotations

import polars as pl
from scipy import stats

from symzoo.merge.methods import AE_ALIGN_PREFIX, ALIGN_REFERENCE, MEDOID, MERGE_MANY, label
from symzoo.report import mark

VALUES = ("accuracy", "loss", "dist", "over_parents", "over_merge_many")
PARENTS = ("parents_mean_accuracy", "parents_best_accuracy", "parents_mean_loss", "parents_best_loss")
TARGET_K = 8
"""The group size of the merge-many target: the merged network keeps the parents' mean accuracy, beats MergeMany."""
TARGET_MID_GAP = -0.01
"""The pair target: the merged midpoint (α = 0.5) within 1 point of the better parent's accuracy."""


def merge_many_summary(many: pl.DataFrame) -> pl.DataFrame:
    """Per zoo, k and method: mean, std and 95% CI half-width (Student t) over groups of :data:`VALUES`, the
    parents' means, and n (see the module docstring). ``many``: the stacked merge-many tables (with ``zoo``)."""
    if not len(many):
        return pl.DataFrame(schema={"zoo": pl.String, "k": pl.Int64, "method": pl.String})
    keys = ["zoo", "k", "group"]
    reference = many.filter(pl.col("method") == MERGE_MANY).select(*keys, pl.col("accuracy").alias("merge_many_acc"))
    rows = many.join(reference, on=keys, how="left").with_columns(
        (pl.col("accuracy") - pl.col("parents_mean_accuracy")).alias("over_parents"),
        (pl.col("accuracy") - pl.col("merge_many_acc")).alias("over_merge_many"),
    )
    grouped = rows.group_by("zoo", "k", "method", maintain_order=True).agg(
        pl.len().alias("n"),
        *[pl.col(v).mean().alias(f"{v}_mean") for v in VALUES],
        *[pl.col(v).std().alias(f"{v}_std") for v in VALUES],
        *[pl.col(p).mean() for p in PARENTS],
    )
    t = pl.Series([stats.t.ppf(0.975, n - 1) if n > 1 else float("nan") for n in grouped["n"]])
    return grouped.with_columns(
        [(pl.col(f"{v}_std") / pl.col("n").sqrt() * t).alias(f"{v}_ci95") for v in VALUES]
    ).sort("zoo", "k", "method")


EXPLANATION = """\
Groups of K networks drawn from the best test networks, each merged into one network (test images; mean ± 95% CI
over groups). `naive`: the raw mean; `merge_many`: Git Re-Basin's MergeMany (each network matched to the mean of
the others, repeatedly: about K assignments per round *per group*); `align_reference`: each network aligned on its
own to the train medoid, then averaged; `ae_align_<encoder>`: each network aligned on its own to its decoded
latent, then averaged (per-network costs, shared by every group); `ae_<encoder>`: the mean of the reconstructions;
`ae_latent_mean_<encoder>`: the decoded mean latent; `medoid`: one train network whatever the group (a control: a
merge that does not beat it on accuracy *and* on KL from the parents has kept nothing of them). `KL from parents`:
the mean KL(parent || merged) over the K parents. Test accuracy of the merged network, mean ± 95% CI over groups:
"""


def merge_many_markdown(summary: pl.DataFrame) -> str:
    """Per zoo and method, the merged network's accuracy at every K (mean ± 95% CI over groups) and its KL from
    the parents at the largest K; then the parents' mean and best accuracy per K."""
    ks = sorted(summary["k"].unique().to_list())
    header = ["zoo", "method", *(f"K = {k}" for k in ks), f"KL from parents (K = {ks[-1]})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cell = {(r["zoo"], r["method"], r["k"]): r for r in summary.iter_rows(named=True)}
    for zoo in summary["zoo"].unique(maintain_order=True).to_list():
        rows = summary.filter(pl.col("zoo") == zoo)
        for method in rows["method"].unique(maintain_order=True).to_list():
            values = [cell.get((zoo, method, k)) for k in ks]
            cells = ["-" if r is None else f"{r['accuracy_mean']:.3f} ± {r['accuracy_ci95']:.3f}" for r in values]
            last = values[-1]
            cells.append("-" if last is None else f"{last['dist_mean']:.3f} ± {last['dist_ci95']:.3f}")
            lines.append("| " + " | ".join([zoo, method, *cells]) + " |")
        for name, column in (("parents' mean", "parents_mean_accuracy"), ("best parent", "parents_best_accuracy")):
            means = rows.group_by("k").agg(pl.col(column).mean())
            by_k = dict(zip(means["k"].to_list(), means[column].to_list()))
            cells = [f"{by_k[k]:.3f}" if k in by_k else "-" for k in ks]
            lines.append("| " + " | ".join([zoo, f"*{name}*", *cells, ""]) + " |")
    return "\n".join(lines) + "\n"


def frame_targets_markdown(barriers: pl.DataFrame, many: pl.DataFrame) -> str:
    """Per zoo and per-network frame (``ae_align_<encoder>`` and the ``align_reference`` control), the targets of
    merging in that frame, each with the measured value: a barrier below Git Re-Basin's with endpoint KL 0; the
    pair's midpoint within 1 point of the better parent; merging K = 8 keeps the parents' mean accuracy and beats
    MergeMany. ``barriers``: the pair summary (:func:`symzoo.merge.barrier.aggregate` rows), ``many``: the
    merge-many summary (:func:`merge_many_summary`)."""
    pair = {(r["zoo"], r["method"]): r for r in barriers.iter_rows(named=True)}
    group = {(r["zoo"], r["k"], r["method"]): r for r in many.iter_rows(named=True)} if len(many) else {}
    header = ["zoo", "method", "barrier < Re-Basin's, endpoint KL 0", "α = 0.5 ≥ better parent − 0.01",
              f"K = {TARGET_K}: ≥ parents' mean, > MergeMany"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    zoos = sorted({zoo for zoo, _ in pair})
    for zoo in zoos:
        rebasin = pair.get((zoo, "rebasin"))
        methods = sorted(m for z, m in pair if z == zoo and m.startswith(AE_ALIGN_PREFIX)) + [ALIGN_REFERENCE]
        for method in methods:
            row = pair.get((zoo, method))
            if row is None or rebasin is None:
                continue
            barrier, kl = row["loss_barrier_mean"], row["endpoint_dist_mean"]
            ok = barrier < rebasin["loss_barrier_mean"] and abs(kl) < 1e-4
            cells = [
                f"{barrier:.3f} vs {rebasin['loss_barrier_mean']:.3f}, KL {kl:.1e} {mark(ok)}",
                f"{row['mid_score_gap_mean']:+.3f} (Re-Basin {rebasin['mid_score_gap_mean']:+.3f}) "
                f"{mark(row['mid_score_gap_mean'] >= TARGET_MID_GAP)}",
            ]
            k8, mm = group.get((zoo, TARGET_K, method)), group.get((zoo, TARGET_K, MERGE_MANY))
            medoid = group.get((zoo, TARGET_K, MEDOID))
            if k8 is None or mm is None:
                cells.append("-")
            else:
                ok = k8["over_parents_mean"] >= 0 and k8["accuracy_mean"] > mm["accuracy_mean"]
                control = f", medoid {medoid['accuracy_mean']:.3f}" if medoid else ""
                cells.append(
                    f"{k8['accuracy_mean']:.3f} vs parents {k8['parents_mean_accuracy']:.3f}, "
                    f"MergeMany {mm['accuracy_mean']:.3f}{control} {mark(ok)}"
                )
            lines.append("| " + " | ".join([zoo, label(method), *cells]) + " |")
    return "\n".join(lines) + "\n"
