"""Tables of the merging experiments (polars), a markdown summary and a JSON for DVC metrics.

Everything the figures need ends up in ``results/tables/``: the stacked curves, per-pair and aggregated
barriers with their endpoints' fidelity, the orbit experiment, the fidelity of the reconstructions and the
encoders' training histories. This module builds the tables; ``symzoo.stages.tables`` reads and writes them.

The curves and barrier columns are task-neutral (``loss``, ``score``, ``dist``: :mod:`symzoo.report.units`); each
zoo's task comes from the ``task`` column of its curves (the zoo's ``spec.task``). The markdown gives each task its
own section with its own units, so a PSNR never sits in a column beside a classifier's accuracy.
"""

from __future__ import annotations

import json
import math

import polars as pl

import symzoo.report as out
from symzoo.merge.barrier import BARRIERS, METRICS, aggregate, markdown, pair_barriers
from symzoo.merge.methods import AE_PREFIX, MEDOID
from symzoo.report import mark
from symzoo.report.merge_many import EXPLANATION as MANY_EXPLANATION
from symzoo.report.merge_many import frame_targets_markdown, merge_many_markdown, merge_many_summary
from symzoo.report.units import UNITS, units

FIDELITY_COLUMNS = (
    "kl",
    "ident_recon",
    "ident_orig",
    "chance",
    "rank",
    "agreement",
    "acc_gap",
    "kendall_tau",
    "spearman",
    "diversity_recon",
    "diversity_orig",
)
MERGE_COLUMNS = (
    "loss_barrier",
    "loss_barrier_orig",
    "endpoint_dist",
    "endpoint_score_gap",
    "mid_dist",
    "mid_score_gap",
)


def mean_curves(curves: pl.DataFrame) -> pl.DataFrame:
    """The mean interpolation curve (over pairs) per zoo, method, split and alpha: DVC's plot data (CSV)."""
    keys = ["zoo", "method", "split", "alpha"]
    return curves.group_by(keys).agg(pl.col("loss").mean(), pl.col("score").mean()).sort(keys)


def zoo_tasks(*curves: pl.DataFrame) -> dict[str, str]:
    """Each zoo's task (``classification`` or ``inr``), from the ``zoo`` and ``task`` columns of curves tables
    (:func:`symzoo.merge.interpolate.curves_table` writes the zoo's ``spec.task`` there); empty tables are skipped."""
    frames = [c for c in curves if len(c)]
    for frame in frames:
        if not {"zoo", "task"} <= set(frame.columns):
            raise ValueError(f"curves: no `zoo` and `task` columns (columns {frame.columns}): rebuild the curves")
    if not frames:
        return {}
    pairs = pl.concat([frame.select("zoo", "task") for frame in frames]).unique(maintain_order=True)
    mixed = pairs.filter(pl.col("zoo").is_duplicated())["zoo"].unique().sort().to_list()
    if mixed:
        raise ValueError(f"curves: zoo(s) {mixed} have curves of more than one task")
    tasks = dict(pairs.iter_rows())
    for zoo, task in tasks.items():
        if task not in UNITS:
            raise ValueError(f"curves of zoo {zoo!r}: unknown task {task!r}, not one of {tuple(UNITS)}")
    return tasks


def _of_zoos(frame: pl.DataFrame, zoos: list[str]) -> pl.DataFrame:
    return frame.filter(pl.col("zoo").is_in(zoos)) if len(frame) else frame


INR_FIDELITY_HEADINGS = {
    "kl": "render MSE",
    "acc_gap": "PSNR gap (dB)",
    "kendall_tau": "τ of PSNRs",
    "spearman": "ρ of PSNRs",
    "diversity_recon": "diversity_recon (MSE)",
    "diversity_orig": "diversity_orig (MSE)",
}
"""An INR zoo's fidelity columns under their own names: the table's ``kl`` is a render MSE, ``acc_gap`` a PSNR gap
(``agreement``, undefined for INRs, is left out)."""


def _fidelity_markdown(fidelity: pl.DataFrame, split: str, task: str = "classification") -> str:
    inr = task == "inr"
    columns = [c for c in FIDELITY_COLUMNS if not (inr and c == "agreement")]
    header = ["zoo", "model", "n", *(INR_FIDELITY_HEADINGS.get(c, c) if inr else c for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in fidelity.filter(pl.col("split") == split).iter_rows(named=True):
        cells = [row["zoo"], row["model"], str(row["n"])]
        small = ("kl", "diversity_recon", "diversity_orig") if inr else ()  # render MSEs are small numbers
        cells += [f"{row[c]:.4f}" if c in small else f"{row[c]:.3f}" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_medoid_reference(summary: pl.DataFrame) -> pl.DataFrame:
    """The summary with ``medoid_mid_dist_mean``: the medoid control's distance from the two parents, per zoo."""
    medoid = summary.filter(pl.col("method") == MEDOID).select(
        "zoo", pl.col("mid_dist_mean").alias("medoid_mid_dist_mean")
    )
    return summary.join(medoid, on="zoo", how="left")


def _merge_markdown(summary: pl.DataFrame) -> str:
    header = ["zoo", "method", "n", *MERGE_COLUMNS, "medoid mid_dist"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [row["zoo"], row["method"], str(row["n"])]
        cells += [f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_ci95']:.4f}" for m in MERGE_COLUMNS]
        medoid = row["medoid_mid_dist_mean"]
        cells.append("-" if medoid is None else f"{medoid:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


TASK_EXPLANATION = {
    "classification": """\
Networks that classify images, measured on the test images: `loss` (`loss_barrier`, `loss_a`, ...) is the
cross-entropy, `score` (`score_barrier`, `endpoint_score_gap`, `score_a`, ...) the accuracy, `dist` (`dist_a`,
`endpoint_dist`, `mid_dist`) the KL between predictions.
""",
    "inr": """\
Implicit neural representations (SIRENs), scored by their renders on the pixel grid: `loss` (`loss_barrier`,
`loss_a`, ...) is the MSE of the render against the ground-truth image (pairs: against the image mixed like the
parameters), `score` (`score_barrier`, `endpoint_score_gap`, `score_a`, ...) the PSNR of the same in dB, `dist`
(`dist_a`, `endpoint_dist`, `mid_dist`) the MSE between renders; gray values are in [0, 1]. The fidelity tables
below name their columns for INRs (`render MSE`, `PSNR gap (dB)`; in `fidelity.parquet`, shared with the
classifier zoos, they are `kl` and `acc_gap`, and `agreement` is undefined, nan).
""",
}
"""What the task-neutral columns are, at the head of each task's section of the markdown."""

EXPLANATION = """\
A barrier is measured against the curve's own endpoints, so a decoder that maps every network to one good
network wins it: the `medoid` control (both endpoints the train split's medoid network) has barrier 0 by
construction. Read every barrier beside its endpoint fidelity: `loss_barrier_orig` measures the path against
the *original* networks' losses, `endpoint_dist` is the {dist} of each endpoint from its original network (0 for
exact alignments), `endpoint_score_gap` the endpoints' {score} minus the originals', `mid_dist` the midpoint's
{dist} from its two parents, next to the medoid's (`medoid mid_dist`), and `mid_score_gap` the midpoint's {score}
minus the better parent's. A merge keeps something of both parents only where its `mid_dist` is clearly below the
medoid's. `align_reference` and `ae_align_<encoder>` align each network *on its own* (to the train medoid, to its own
decoded latent), so their endpoints are the originals; Re-Basin solves one assignment per pair.
"""

FIDELITY_EXPLANATION = """\
KL(orig || recon) at temperature 1 on the test images; `ident_recon` / `ident_orig`: identifiability top-1
(the reconstruction is closer to its own original than to every other original, and the other way round; ties
count fractionally), against the `chance` level 1/N; `rank`: mean normalised rank of the own original (0 best,
0.5 chance); `acc_gap`: accuracy of the reconstruction minus the original's; `kendall_tau` / `spearman` of the
two accuracies; `diversity`: mean pairwise KL among reconstructions and among originals. Controls are fitted on
the train split: `identity` (the original itself), `medoid` (one train network for all), `mean_prediction` (the
train networks' mean prediction for all) and `nearest_train` (an oracle that retrieves the train network
nearest to each original; on the train split, the nearest *other* one).
"""

INR_FIDELITY_EXPLANATION = """\
`render MSE`: the MSE between the reconstruction's and the original's renders on the pixel grid (gray values in
[0, 1]; in `fidelity.parquet` the column `kl`); `ident_recon` / `ident_orig`: identifiability top-1 with that
distance (ties count fractionally), against the `chance` level 1/N; `rank`: mean normalised rank of the own original
(0 best, 0.5 chance); `PSNR gap (dB)`: PSNR of the reconstruction minus the original's, each against the ground
truth (`acc_gap`); `τ` / `ρ of PSNRs`: rank correlations of the two PSNRs; `diversity`: mean pairwise render MSE
among reconstructions and among originals. Controls are fitted on the train split: `identity`, `medoid`,
`mean_prediction` (the train INRs' mean image, the best constant in MSE) and `nearest_train` (an oracle that
retrieves the train INR nearest to each original).
"""


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: an undefined metric (e.g. a rank correlation of a constant) is null."""
    return None if value is None or not math.isfinite(value) else value


TARGETS = {"ident": 0.5, "acc_gap": 0.02, "kendall_tau": 0.8}
"""What a faithful autoencoder reaches on the test networks: identifiability (both directions) at least 0.5,
|accuracy gap| at most 0.02, Kendall tau at least 0.8, and a KL below the nearest-train-network oracle's."""


def targets_markdown(fidelity: pl.DataFrame, summary: pl.DataFrame, task: str = "classification") -> str:
    """Per zoo and autoencoder (the rows of zoos of one ``task``), each fidelity target with the measured value and
    whether it is reached; then whether barrier(autoencoder) < barrier(Re-Basin) < barrier(naive) with endpoints
    more faithful than the medoid's. Classifier zoos: identifiability, KL below the nearest-train oracle's, the
    accuracy gap and τ; INR zoos: identifiability, render MSE below the oracle's and at most half the mean image's
    (an INR's `acc_gap` is a PSNR gap, no target)."""
    u = units(task)
    test = fidelity.filter(pl.col("split") == "test")
    barrier = {(r["zoo"], r["method"]): r for r in summary.iter_rows(named=True)}
    own = ["abs(acc gap) ≤ 0.02", "τ ≥ 0.8"] if task == "classification" else [f"{u.dist} ≤ ½ mean image's"]
    header = ["zoo", "model", "identifiability ≥ 0.5", f"{u.dist} < oracle", *own, "merge order"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in test.filter(pl.col("model").str.starts_with(AE_PREFIX)).iter_rows(named=True):
        zoo = row["zoo"]

        def control(name: str, zoo: str = zoo) -> float | None:
            value = test.filter((pl.col("zoo") == zoo) & (pl.col("model") == name))["kl"]
            return value[0] if len(value) else None

        oracle, mean = control("nearest_train"), control("mean_prediction")
        f = ".3f" if task == "classification" else ".4f"  # render MSEs are small numbers
        ident = min(row["ident_recon"], row["ident_orig"])
        if task == "classification":
            targets = (
                f"{row['acc_gap']:+.3f} {mark(abs(row['acc_gap']) <= TARGETS['acc_gap'])}",
                f"{row['kendall_tau']:.3f} {mark(row['kendall_tau'] >= TARGETS['kendall_tau'])}",
            )
        else:
            targets = (f"{row['kl']:{f}} vs {mean / 2:{f}} {mark(row['kl'] <= mean / 2)}" if mean else "-",)
        cells = [
            f"{row['ident_recon']:.3f} / {row['ident_orig']:.3f} {mark(ident >= TARGETS['ident'])}",
            f"{row['kl']:{f}} vs {oracle:{f}} {mark(row['kl'] < oracle)}" if oracle is not None else "-",
            *targets,
            _merge_order(barrier, zoo, row["model"], u.dist),
        ]
        lines.append("| " + " | ".join([zoo, row["model"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def _merge_order(barrier: dict, zoo: str, model: str, dist: str) -> str:
    rows = [barrier.get((zoo, m)) for m in (model, "rebasin", "naive", MEDOID)]
    if any(r is None for r in rows):
        return "-"
    ae, rebasin, naive, medoid = (r["loss_barrier_mean"] for r in rows)
    faithful = rows[0]["endpoint_dist_mean"] < rows[3]["endpoint_dist_mean"]
    ok = ae < rebasin < naive and faithful
    ends = f"endpoint {dist} {rows[0]['endpoint_dist_mean']:.3f} vs medoid {rows[3]['endpoint_dist_mean']:.3f}"
    return f"{ae:.3f} < {rebasin:.3f} < {naive:.3f}, {ends} {mark(ok)}"


KIND_NAMES = {"permutation": "P", "scaling": "D", "both": "PD"}
"""The paper's names of the INR orbit's transforms: permutations, sign flips (D), both."""


def inr_orbit_summary(orbit: pl.DataFrame) -> pl.DataFrame:
    """The INR orbit experiment (rows of ``task == "inr"``) per zoo, kind and method: the render MSE against the
    ground truth at the midpoint (alpha nearest 0.5) and at the endpoints, and the barrier, mean and std over runs."""
    schema = {"zoo": pl.String, "kind": pl.String, "method": pl.String}
    if "task" not in orbit.columns or not len(orbit.filter(pl.col("task") == "inr")):
        return pl.DataFrame(schema=schema)
    inr = orbit.filter(pl.col("task") == "inr")
    per_run = pair_barriers(inr, by=("zoo", "kind", "method", "pair_id"))
    middle = (
        inr.with_columns((pl.col("alpha") - 0.5).abs().alias("distance"))
        .sort("distance", "alpha")
        .group_by("zoo", "kind", "method", "pair_id", maintain_order=True)
        .agg(
            pl.col("loss").first().alias("mid_mse"),
            ((pl.col("orig_loss_a").first() + pl.col("orig_loss_b").first()) / 2).alias("copies_mse"),  # per pair
        )
    )
    per_run = per_run.join(middle, on=["zoo", "kind", "method", "pair_id"])
    per_run = per_run.with_columns(((pl.col("loss_a") + pl.col("loss_b")) / 2).alias("end_mse"))
    values = ("mid_mse", "end_mse", "loss_barrier", "endpoint_dist", "copies_mse")
    return (
        per_run.group_by("zoo", "kind", "method", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            *[pl.col(v).mean().alias(f"{v}_mean") for v in values],
            *[pl.col(v).std().alias(f"{v}_std") for v in values],
        )
        .sort("zoo", "kind", "method")
    )


def _inr_orbit_markdown(summary: pl.DataFrame) -> str:
    header = [
        "zoo",
        "transform",
        "method",
        "runs",
        "MSE at α = 0.5",
        "MSE at the ends",
        "barrier",
        "endpoint MSE",
        "copies' own MSE",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [row["zoo"], KIND_NAMES.get(row["kind"], row["kind"]), row["method"], str(row["n"])]
        for v in ("mid_mse", "end_mse", "loss_barrier", "endpoint_dist", "copies_mse"):
            cells.append(f"{row[f'{v}_mean']:.5f} ± {row[f'{v}_std'] or 0:.5f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


INR_EXPLANATION = """\
The paper's INR orbit experiment: test INRs, copies transformed by a random P (permutations), D (sign flips) or
PD on the hidden layers plus N(0, noise²) on every parameter, copy i interpolated with copy i + 1; the score is
the MSE of the rendered image (values in [0, 1]) against the ground-truth image (mean ± std over runs;
`endpoint MSE`: the `endpoint_dist`, the MSE between an endpoint's render and its copy's; `copies' own MSE`: the
noisy copies' renders against the ground truth, the level a faithful method stays at). The expected result:
ScaleGMN collapses the orbit under P and D, NG-GNN only under P. A flat curve is a result only where it lies
near the copies' own level and below the medoid control's (one train INR for every input: flat, and far).
"""


def summary_markdown(
    summary: pl.DataFrame,
    orbit_summary: pl.DataFrame,
    fidelity: pl.DataFrame,
    inr_orbit: pl.DataFrame,
    tasks: dict[str, str],
    many: pl.DataFrame | None = None,
) -> str:
    """``barriers.md``: a section per task (classifier zoos first, then INR zoos), each with its own units and
    only its own zoos' rows (``tasks``: zoo → task, :func:`zoo_tasks`)."""
    unknown = sorted(set(fidelity["zoo"]) - set(tasks)) if len(fidelity) else []
    if unknown:
        raise ValueError(f"fidelity rows of zoo(s) {unknown} without curves: their task is unknown")
    sections = []
    for task in UNITS:
        zoos = [zoo for zoo, t in tasks.items() if t == task]
        if zoos:
            sections.append(
                _task_markdown(
                    task,
                    _of_zoos(summary, zoos),
                    _of_zoos(orbit_summary, zoos),
                    _of_zoos(fidelity, zoos),
                    _of_zoos(inr_orbit, zoos),
                    _of_zoos(many, zoos) if many is not None else pl.DataFrame(),
                )
            )
    return "\n".join(sections)


def _task_markdown(
    task: str,
    summary: pl.DataFrame,
    orbit_summary: pl.DataFrame,
    fidelity: pl.DataFrame,
    inr_orbit: pl.DataFrame,
    many: pl.DataFrame,
) -> str:
    u = units(task)
    text = f"# {u.title}\n\n" + TASK_EXPLANATION[task]
    if len(summary):
        text += "\n## Merging: barriers beside the fidelity of their endpoints (mean ± 95% CI over pairs)\n\n"
        text += EXPLANATION.format(dist=u.dist, score=u.score) + "\n" + _merge_markdown(summary)
    if len(summary) and task == "classification":
        text += "\n## Targets of merging in one frame: each network aligned on its own\n\n"
        text += frame_targets_markdown(summary, many)
    if len(many):
        text += "\n## Merging many networks (mean ± 95% CI over groups)\n\n" + MANY_EXPLANATION
        text += "\n" + merge_many_markdown(many)
    if len(fidelity):
        text += "\n## Targets of a faithful autoencoder (test networks)\n\n"
        text += targets_markdown(fidelity, summary, task)
        text += "\n## Fidelity of the reconstructions: test networks\n\n"
        text += (FIDELITY_EXPLANATION if task == "classification" else INR_FIDELITY_EXPLANATION) + "\n"
        text += _fidelity_markdown(fidelity, "test", task)
        text += "\n## Fidelity of the reconstructions: train networks (memorisation)\n\n"
        text += _fidelity_markdown(fidelity, "train", task)
    if len(summary):
        text += "\n## Barriers (mean ± 95% CI over pairs)\n\n" + markdown(summary, ("zoo", "method"), BARRIERS)
    if len(orbit_summary):
        text += "\n## Orbit barriers (network vs. a random symmetry transform of itself)\n\n"
        text += markdown(orbit_summary, ("zoo", "kind", "method"), (*BARRIERS, "endpoint_dist"))
    if len(inr_orbit):
        text += "\n## INR orbit: render MSE against the ground truth (mean ± std over runs)\n\n" + INR_EXPLANATION
        text += "\n" + _inr_orbit_markdown(inr_orbit)
    return text


def build_tables(
    curves: pl.DataFrame,
    orbit: pl.DataFrame,
    training: pl.DataFrame,
    fidelity: pl.DataFrame,
    many: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame | str]:
    """Every report table, keyed by its file name in ``results/tables/``, from the stacked inputs: interpolation
    ``curves`` (with ``zoo`` and ``method`` columns), ``orbit`` curves (with ``zoo``), encoder ``training``
    histories (with ``zoo`` and ``encoder``; may be empty), ``fidelity`` rows (with ``zoo``; may be empty) and the
    merge-many rows (with ``zoo``; None or empty: none). Each zoo's task comes from the curves' ``task`` column."""
    many = pl.DataFrame() if many is None else many
    many_summary = merge_many_summary(many)
    tasks = zoo_tasks(curves, orbit)
    per_pair = pair_barriers(curves, by=("zoo", "method", "pair_id"))
    summary = with_medoid_reference(aggregate(per_pair, by=("zoo", "method")))
    orbit_pairs = pair_barriers(orbit, by=("zoo", "kind", "method", "pair_id"))
    orbit_summary = aggregate(orbit_pairs, by=("zoo", "kind", "method"))
    if len(fidelity):
        fidelity = fidelity.sort("zoo", "split", "model")
    metrics: dict[str, dict] = {}  # zoo -> method -> metric; fidelity rows under "fidelity_<split>"
    for row in summary.iter_rows(named=True):
        metrics.setdefault(row["zoo"], {})[row["method"]] = {m: _finite(row[f"{m}_mean"]) for m in METRICS}
    for row in fidelity.iter_rows(named=True):
        metrics.setdefault(row["zoo"], {}).setdefault(f"fidelity_{row['split']}", {})[row["model"]] = {
            c: _finite(row[c]) for c in FIDELITY_COLUMNS
        }
    inr_orbit = inr_orbit_summary(orbit)
    text = summary_markdown(summary, orbit_summary, fidelity, inr_orbit, tasks, many_summary)
    return {
        out.CURVES: curves,
        out.INTERPOLATION_CSV: mean_curves(curves),
        out.BARRIERS: per_pair,
        out.SUMMARY: summary,
        out.ORBIT_CURVES: orbit,
        out.ORBIT: orbit_pairs,
        out.ORBIT_SUMMARY: orbit_summary,
        out.TRAINING: training,
        out.FIDELITY: fidelity,
        out.MERGE_MANY: many,
        out.MERGE_MANY_SUMMARY: many_summary,
        out.INR_ORBIT: inr_orbit,
        out.SUMMARY_MD: text,
        **{f"{out.METRICS_DIR}/{zoo}.json": json.dumps(values, indent=2) + "\n" for zoo, values in metrics.items()},
    }
