"""Tables of the merging experiments (polars), a markdown summary and a JSON for DVC metrics.

Everything the figures need ends up in ``results/tables/``: the stacked curves, per-pair and aggregated
barriers with their endpoints' fidelity, the orbit experiment, the fidelity of the reconstructions and the
encoders' training histories. This module builds the tables; ``symzoo.stages.tables`` reads and writes them.
"""

from __future__ import annotations

import json
import math

import polars as pl

import symzoo.report as out
from symzoo.merge.barrier import BARRIERS, METRICS, aggregate, markdown, pair_barriers
from symzoo.merge.methods import AE_PREFIX, MEDOID

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
MERGE_COLUMNS = ("loss_barrier", "loss_barrier_orig", "endpoint_kl", "endpoint_acc_gap", "mid_kl")


def mean_curves(curves: pl.DataFrame) -> pl.DataFrame:
    """The mean interpolation curve (over pairs) per zoo, method, split and alpha: DVC's plot data (CSV)."""
    keys = ["zoo", "method", "split", "alpha"]
    return curves.group_by(keys).agg(pl.col("loss").mean(), pl.col("accuracy").mean()).sort(keys)


def _fidelity_markdown(fidelity: pl.DataFrame, split: str) -> str:
    rows = fidelity.filter(pl.col("split") == split)
    header = ["zoo", "model", "n", *FIDELITY_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows.iter_rows(named=True):
        cells = [row["zoo"], row["model"], str(row["n"])] + [f"{row[c]:.3f}" for c in FIDELITY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_medoid_reference(summary: pl.DataFrame) -> pl.DataFrame:
    """The summary with ``medoid_mid_kl_mean``: the medoid control's KL from the two parents, per zoo."""
    medoid = summary.filter(pl.col("method") == MEDOID).select("zoo", pl.col("mid_kl_mean").alias("medoid_mid_kl_mean"))
    return summary.join(medoid, on="zoo", how="left")


def _merge_markdown(summary: pl.DataFrame) -> str:
    header = ["zoo", "method", "n", *MERGE_COLUMNS, "medoid mid_kl"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [row["zoo"], row["method"], str(row["n"])]
        cells += [f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_ci95']:.4f}" for m in MERGE_COLUMNS]
        medoid = row["medoid_mid_kl_mean"]
        cells.append("-" if medoid is None else f"{medoid:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


EXPLANATION = """\
A barrier is measured against the curve's own endpoints, so a decoder that maps every network to one good
network wins it: the `medoid` control (both endpoints the train split's medoid network) has barrier 0 by
construction. Read every barrier beside its endpoint fidelity: `loss_barrier_orig` measures the path against
the *original* networks' losses, `endpoint_kl` is the KL of each endpoint from its original network (0 for exact
alignments), `endpoint_acc_gap` the endpoints' accuracy minus the originals', `mid_kl` the midpoint's KL from its
two parents, next to the medoid's (`medoid mid_kl`). A merge keeps something of both parents only where its
`mid_kl` is clearly below the medoid's.
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


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: an undefined metric (e.g. a rank correlation of a constant) is null."""
    return None if value is None or not math.isfinite(value) else value


TARGETS = {"ident": 0.5, "acc_gap": 0.02, "kendall_tau": 0.8}
"""What a faithful autoencoder reaches on the test networks: identifiability (both directions) at least 0.5,
|accuracy gap| at most 0.02, Kendall tau at least 0.8, and a KL below the nearest-train-network oracle's."""


def targets_markdown(fidelity: pl.DataFrame, summary: pl.DataFrame) -> str:
    """Per zoo and autoencoder, each fidelity target with the measured value and whether it is reached; then
    whether barrier(autoencoder) < barrier(Re-Basin) < barrier(naive) with endpoints more faithful than the
    medoid's."""
    test = fidelity.filter(pl.col("split") == "test")
    barrier = {(r["zoo"], r["method"]): r for r in summary.iter_rows(named=True)}
    header = ["zoo", "model", "identifiability ≥ 0.5", "KL < oracle", "abs(acc gap) ≤ 0.02", "τ ≥ 0.8", "merge order"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in test.filter(pl.col("model").str.starts_with(AE_PREFIX)).iter_rows(named=True):
        zoo = row["zoo"]
        oracle = test.filter((pl.col("zoo") == zoo) & (pl.col("model") == "nearest_train"))["kl"]
        ident = min(row["ident_recon"], row["ident_orig"])
        cells = [
            f"{row['ident_recon']:.3f} / {row['ident_orig']:.3f} {_mark(ident >= TARGETS['ident'])}",
            f"{row['kl']:.3f} vs {oracle[0]:.3f} {_mark(row['kl'] < oracle[0])}" if len(oracle) else "-",
            *(
                (
                    f"{row['acc_gap']:+.3f} {_mark(abs(row['acc_gap']) <= TARGETS['acc_gap'])}",
                    f"{row['kendall_tau']:.3f} {_mark(row['kendall_tau'] >= TARGETS['kendall_tau'])}",
                )
                if _classifier(row)
                else (f"n/a (INR: PSNR gap {row['acc_gap']:+.1f} dB)", f"n/a (INR: τ of PSNR {row['kendall_tau']:.3f})")
            ),
            _merge_order(barrier, zoo, row["model"]),
        ]
        lines.append("| " + " | ".join([zoo, row["model"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def _classifier(row: dict) -> bool:
    """A classifier zoo's row; an INR zoo's has no class agreement (NaN), and its accuracy columns hold PSNR."""
    return not math.isnan(row["agreement"])


def _mark(ok: bool) -> str:
    return "(reached)" if ok else "(**not reached**)"


def _merge_order(barrier: dict, zoo: str, model: str) -> str:
    rows = [barrier.get((zoo, m)) for m in (model, "rebasin", "naive", MEDOID)]
    if any(r is None for r in rows):
        return "-"
    ae, rebasin, naive, medoid = (r["loss_barrier_mean"] for r in rows)
    faithful = rows[0]["endpoint_kl_mean"] < rows[3]["endpoint_kl_mean"]
    ok = ae < rebasin < naive and faithful
    ends = f"endpoint KL {rows[0]['endpoint_kl_mean']:.3f} vs medoid {rows[3]['endpoint_kl_mean']:.3f}"
    return f"{ae:.3f} < {rebasin:.3f} < {naive:.3f}, {ends} {_mark(ok)}"


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
        .agg(pl.col("loss").first().alias("mid_mse"))
    )
    per_run = per_run.join(middle, on=["zoo", "kind", "method", "pair_id"])
    per_run = per_run.with_columns(((pl.col("loss_a") + pl.col("loss_b")) / 2).alias("end_mse"))
    values = ("mid_mse", "end_mse", "loss_barrier", "endpoint_kl")
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
    header = ["zoo", "transform", "method", "runs", "MSE at α = 0.5", "MSE at the ends", "barrier", "endpoint MSE"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.iter_rows(named=True):
        cells = [row["zoo"], KIND_NAMES.get(row["kind"], row["kind"]), row["method"], str(row["n"])]
        for v in ("mid_mse", "end_mse", "loss_barrier", "endpoint_kl"):
            cells.append(f"{row[f'{v}_mean']:.5f} ± {row[f'{v}_std'] or 0:.5f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


INR_EXPLANATION = """\
The paper's INR orbit experiment: test INRs, copies transformed by a random P (permutations), D (sign flips) or
PD on the hidden layers plus N(0, noise²) on every parameter, copy i interpolated with copy i + 1; the score is
the MSE of the rendered image against the ground-truth image (mean ± std over runs). For INR zoos, every table
above reads `loss` as that MSE (pairs: against the image mixed like the parameters), `accuracy` as the PSNR (dB),
`kl` / `endpoint_kl` / `mid_kl` as the MSE between renders, `acc_gap` as the PSNR gap. The expected result:
ScaleGMN collapses the orbit under P and D, NG-GNN only under P.
"""


def build_tables(
    curves: pl.DataFrame, orbit: pl.DataFrame, training: pl.DataFrame, fidelity: pl.DataFrame
) -> dict[str, pl.DataFrame | str]:
    """Every report table, keyed by its file name in ``results/tables/``, from the stacked inputs: interpolation
    ``curves`` (with ``zoo`` and ``method`` columns), ``orbit`` curves (with ``zoo``), encoder ``training``
    histories (with ``zoo`` and ``encoder``; may be empty) and ``fidelity`` rows (with ``zoo``; may be empty)."""
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
    text = "# Merging: barriers beside the fidelity of their endpoints (mean ± 95% CI over pairs)\n\n"
    text += EXPLANATION + "\n" + _merge_markdown(summary)
    if len(fidelity):
        text += "\n# Targets of a faithful autoencoder (test networks)\n\n" + targets_markdown(fidelity, summary)
        text += "\n# Fidelity of the reconstructions: test networks\n\n" + FIDELITY_EXPLANATION + "\n"
        text += _fidelity_markdown(fidelity, "test")
        text += "\n# Fidelity of the reconstructions: train networks (memorisation)\n\n"
        text += _fidelity_markdown(fidelity, "train")
    text += "\n# Barriers (mean ± 95% CI over pairs)\n\n" + markdown(summary, ("zoo", "method"), BARRIERS)
    text += "\n# Orbit barriers (network vs. a random symmetry transform of itself)\n\n"
    text += markdown(orbit_summary, ("zoo", "kind", "method"), (*BARRIERS, "endpoint_kl"))
    inr_orbit = inr_orbit_summary(orbit)
    if len(inr_orbit):
        text += "\n# INR orbit: render MSE against the ground truth (mean ± std over runs)\n\n" + INR_EXPLANATION
        text += "\n" + _inr_orbit_markdown(inr_orbit)
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
        out.INR_ORBIT: inr_orbit,
        out.SUMMARY_MD: text,
        **{f"{out.METRICS_DIR}/{zoo}.json": json.dumps(values, indent=2) + "\n" for zoo, values in metrics.items()},
    }
