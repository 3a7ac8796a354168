"""The generation table (quality, novelty, diversity, ensembles, likelihood, beside the controls), its targets and
figures. No wall-clock time enters them (the summaries keep it): the same config and seed give the same bytes.

Input: the ``summary.json`` and ``networks.parquet`` of every model and control folder of
``results/generate/{zoo}/`` (:mod:`symzoo.stages.generate`). Every number is on the zoo's test images.

The targets, per zoo, judge the best flow (the highest mean *validation* accuracy of its samples, so the test images
do not pick it) against the held-out test networks: mean sample accuracy within 2 points of theirs; at least 90% of
samples at or above the zoo's ``min_accuracy``; the median sample no closer to its nearest train network (agreement,
KL) than the median test network is; BMA over 10 samples at least as good (NLL) as over 10 test networks. The effect
of canonicalisation is measured: each representation against ``raw`` with the same field, geometry and coupling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

CONTROL_LABELS = {
    "test": "test networks (reference)",
    "memoriser": "memoriser (train networks)",
    "noise": "noise baseline (train + noise)",
    "gaussian": "Gaussian on aligned weights",
}
CONTROL_ORDER = tuple(CONTROL_LABELS)
ACCURACY_GAP, AT_LEAST, ENSEMBLE_K = 0.02, 0.9, 10


def table(summaries: Mapping[str, Mapping[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per (zoo, model) and the ensembles' rows (zoo, model, k, accuracy, nll, ece)."""
    rows, ens = [], []
    for name, s in summaries.items():
        zoo, model = name.split("/", 1)
        test, likelihood = s["test"], s.get("likelihood") or {}
        samplers = s.get("samplers") or {}
        rows.append(
            {
                "zoo": zoo, "model": model, "kind": s["kind"], "representation": s.get("representation"),
                "field": s.get("field"), "operator": s.get("operator"), "geometry": s.get("geometry"),
                "coupling": s.get("coupling"), "networks": test["networks"], "accuracy": test["accuracy"],
                "accuracy_std": test["accuracy_std"], "accuracy_max": test["accuracy_max"],
                "at_least_min_accuracy": test["at_least_min_accuracy"], "min_accuracy": s["min_accuracy"],
                "ce": _float(test["ce"]), "nearest_agreement_median": test["nearest_agreement_median"],
                "nearest_kl_median": test["nearest_kl_median"], "diversity": _float(test["diversity"]),
                "val_accuracy": s["val_accuracy"], "log_p_per_parameter": _float(likelihood.get("per_parameter")),
                "invariance_gap": _float(likelihood.get("invariance_gap")),
                "probe_gap": _float(likelihood.get("probe_gap")), "noise_level": _float(s.get("noise_level")),
                **{f"{k}_accuracy": _float(v["accuracy"]) for k, v in samplers.items()},
                **{f"{k}_at_least_min_accuracy": _float(v["at_least_min_accuracy"]) for k, v in samplers.items()},
            }
        )  # fmt: skip
        ens += [{"zoo": zoo, "model": model} | row for row in s["ensembles"]]
    frame = pl.DataFrame(rows, infer_schema_length=None).sort("zoo", "kind", "model")
    return frame, pl.DataFrame(ens, infer_schema_length=None)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def label(row: Mapping[str, Any]) -> str:
    if row["kind"] == "control":
        return CONTROL_LABELS.get(row["model"], row["model"])
    return row["model"]


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    rank = {name: i for i, name in enumerate(CONTROL_ORDER)}
    return frame.with_columns(_r=pl.col("model").replace_strict(rank, default=len(rank))).sort("_r", "model").drop("_r")


def best_flow(frame: pl.DataFrame, zoo: str) -> dict[str, Any] | None:
    flows = frame.filter((pl.col("zoo") == zoo) & (pl.col("kind") == "flow"))
    return flows.sort("val_accuracy", descending=True).row(0, named=True) if len(flows) else None


def _row(frame: pl.DataFrame, zoo: str, model: str) -> dict[str, Any] | None:
    rows = frame.filter((pl.col("zoo") == zoo) & (pl.col("model") == model))
    return rows.row(0, named=True) if len(rows) else None


def _ensemble(ens: pl.DataFrame, zoo: str, model: str, k: int) -> dict[str, Any] | None:
    rows = ens.filter((pl.col("zoo") == zoo) & (pl.col("model") == model) & (pl.col("k") == k))
    return rows.row(0, named=True) if len(rows) else None


def targets(frame: pl.DataFrame, ens: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for zoo in frame["zoo"].unique(maintain_order=True).to_list():
        best, test = best_flow(frame, zoo), _row(frame, zoo, "test")
        if best is None or test is None:
            continue

        def add(target: str, value: float, against: float, reached: bool | None, zoo: str = zoo,
                model: str = best["model"]) -> None:  # fmt: skip
            rows.append({"zoo": zoo, "model": model, "target": target, "value": value, "against": against,
                         "reached": reached})  # fmt: skip

        gap = best["accuracy"] - test["accuracy"]
        add(f"mean sample accuracy within {ACCURACY_GAP:g} of the test networks' (gap)", gap, ACCURACY_GAP,
            abs(gap) <= ACCURACY_GAP)  # fmt: skip
        add(f"samples at or above min_accuracy {best['min_accuracy']:g} (share)", best["at_least_min_accuracy"],
            AT_LEAST, best["at_least_min_accuracy"] >= AT_LEAST)  # fmt: skip
        add(
            "median nearest-train agreement at most the test networks'",
            best["nearest_agreement_median"],
            test["nearest_agreement_median"],
            best["nearest_agreement_median"] <= test["nearest_agreement_median"],
        )
        add("median nearest-train KL at least the test networks'", best["nearest_kl_median"],
            test["nearest_kl_median"], best["nearest_kl_median"] >= test["nearest_kl_median"])  # fmt: skip
        ours, theirs = _ensemble(ens, zoo, best["model"], ENSEMBLE_K), _ensemble(ens, zoo, "test", ENSEMBLE_K)
        if ours and theirs:
            add(f"BMA NLL over {ENSEMBLE_K} samples at most over {ENSEMBLE_K} test networks'", ours["nll"],
                theirs["nll"], ours["nll"] <= theirs["nll"])  # fmt: skip
        flows = frame.filter((pl.col("zoo") == zoo) & (pl.col("kind") == "flow"))
        for row in flows.filter(pl.col("representation") != "raw").iter_rows(named=True):
            same = flows.filter(
                (pl.col("representation") == "raw")
                & (pl.col("field") == row["field"])
                & (pl.col("geometry") == "euclidean")
                & (pl.col("coupling") == row["coupling"])
            )
            if len(same):
                raw = same.row(0, named=True)
                add(f"{row['model']} − {raw['model']}: mean sample accuracy (canonicalisation)",
                    row["accuracy"] - raw["accuracy"], 0.0, None)  # fmt: skip
    schema = {"zoo": pl.String, "model": pl.String, "target": pl.String, "value": pl.Float64, "against": pl.Float64,
              "reached": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def markdown(frame: pl.DataFrame, ens: pl.DataFrame, goals: pl.DataFrame) -> str:
    lines = [
        "# Generative models of weights (test images)\n",
        "Quality: each network's test accuracy. Novelty (Zeng et al.): each network's highest prediction agreement",
        "and lowest KL(network ‖ train network) over all train networks (medians): a copy of a train network scores",
        "1 and 0, a fresh training run scores what the test networks do. Diversity: mean pairwise Jensen–Shannon",
        "divergence of predictions. Controls: the test networks (the reference), a memoriser (random train networks),",
        "a noise baseline (train networks plus noise, its level matched to the best model's accuracy), a Gaussian",
        "fitted to the aligned train weights. The best flow is chosen by its samples' validation accuracy.\n",
    ]
    for zoo in frame["zoo"].unique(maintain_order=True).to_list():
        z = _ordered(frame.filter(pl.col("zoo") == zoo))
        best = best_flow(frame, zoo)
        lines += [
            f"## {zoo}\n",
            "| model | representation | field | geometry, coupling | mean acc ± std | max | ≥ min acc | test CE |"
            " nearest agreement | nearest KL | diversity | log p / parameter |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in z.iter_rows(named=True):
            name = label(row) + (" **(best)**" if best and row["model"] == best["model"] else "")
            if row["model"] == "noise":
                name += f" (level {row['noise_level']:.2f})"
            how = "–" if row["kind"] == "control" else f"{row['geometry']}, {row['coupling']}"
            field = row["field"] if row["field"] != "graph" else f"graph ({row['operator']})"
            lines.append(
                f"| {name} | {row['representation'] or '–'} | {field or '–'} | {how} | {_f(row['accuracy'])} ± "
                f"{_f(row['accuracy_std'])} | {_f(row['accuracy_max'])} | {_f(row['at_least_min_accuracy'], 2)} | "
                f"{_f(row['ce'])} | {_f(row['nearest_agreement_median'])} | {_f(row['nearest_kl_median'])} | "
                f"{_f(row['diversity'], 4)} | {_f(row['log_p_per_parameter'], 2)} |"
            )
        samplers = [c.removesuffix("_accuracy") for c in z.columns if c.endswith("_accuracy")
                    and c.split("_")[0] in ("euler", "dopri5", "stochastic") and "at_least" not in c]  # fmt: skip
        flows = z.filter(pl.col("kind") == "flow")
        if samplers and len(flows):
            lines += ["\n### Samplers: mean sample accuracy (share at or above min_accuracy)\n",
                      "| model | " + " | ".join(samplers) + " |", "|---|" + "---|" * len(samplers)]  # fmt: skip
            for row in flows.iter_rows(named=True):
                cells = [f"{_f(row.get(f'{s}_accuracy'))} ({_f(row.get(f'{s}_at_least_min_accuracy'), 2)})"
                         for s in samplers]  # fmt: skip
                lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
        ks = sorted(ens.filter(pl.col("zoo") == zoo)["k"].unique().to_list())
        if ks:
            lines += ["\n### Ensembles: Bayesian model averaging over K networks (accuracy / NLL / ECE)\n",
                      "| model | " + " | ".join(f"K = {k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]  # fmt: skip
            for row in z.iter_rows(named=True):
                cells = []
                for k in ks:
                    e = _ensemble(ens, zoo, row["model"], k)
                    cells.append(f"{_f(e['accuracy'])} / {_f(e['nll'])} / {_f(e['ece'])}" if e else "–")
                lines.append(f"| {label(row)} | " + " | ".join(cells) + " |")
        invariant = flows.filter(pl.col("invariance_gap").is_not_nan())
        if len(invariant):
            lines += [
                "\n### Invariance of the learned density (graph fields): mean |Δ log p| of test networks, nats\n",
                "Under a random group element, beside the change between two draws of the Hutchinson probe on the",
                "same networks (an invariant density moves by no more than the probe noise).\n",
                "| model | under a group element | between two probe draws |",
                "|---|---|---|",
            ]
            for row in invariant.iter_rows(named=True):
                lines.append(f"| {row['model']} | {row['invariance_gap']:.2f} | {row['probe_gap']:.2f} |")
        g = goals.filter(pl.col("zoo") == zoo)
        if len(g):
            lines += [
                f"\n### Targets ({g['model'][0]})\n",
                "| target | value | against | reached |",
                "|---|---|---|---|",
            ]
            for row in g.iter_rows(named=True):
                reached = "measured" if row["reached"] is None else ("yes" if row["reached"] else "**no**")
                lines.append(f"| {row['target']} | {_f(row['value'])} | {_f(row['against'])} | {reached} |")
        lines.append("")
    return "\n".join(lines)


def figures(frame: pl.DataFrame, ens: pl.DataFrame, networks: pl.DataFrame) -> dict[str, plt.Figure]:
    """``generation_accuracy`` (histograms of the best flow's samples and of the test networks), ``generation_novelty``
    (mean accuracy against median nearest-train agreement, every model and control), ``generation_bma`` (BMA
    accuracy and NLL against K)."""
    zoos = frame["zoo"].unique(maintain_order=True).to_list()
    out = {}
    fig, axes = plt.subplots(1, len(zoos), figsize=(5.5 * len(zoos), 4), squeeze=False)
    for ax, zoo in zip(axes[0], zoos, strict=True):
        best = best_flow(frame, zoo)
        shown = ["test", *([best["model"]] if best else [])]
        data = networks.filter((pl.col("zoo") == zoo) & pl.col("model").is_in(shown)).to_pandas()
        sns.histplot(data=data, x="accuracy", hue="model", stat="density", common_norm=False, bins=30, ax=ax)
        ax.set(title=f"{zoo}: test accuracy of samples and test networks", xlabel="test accuracy")
    fig.tight_layout()
    out["generation_accuracy"] = fig
    fig, axes = plt.subplots(1, len(zoos), figsize=(5.5 * len(zoos), 4.5), squeeze=False)
    for ax, zoo in zip(axes[0], zoos, strict=True):
        z = frame.filter(pl.col("zoo") == zoo)
        for row in z.iter_rows(named=True):
            marker = "*" if row["model"] == "test" else ("s" if row["kind"] == "control" else "o")
            ax.scatter(row["nearest_agreement_median"], row["accuracy"], marker=marker, s=90 if marker == "*" else 40)
            ax.annotate(label(row), (row["nearest_agreement_median"], row["accuracy"]), fontsize=7)
        ax.set(title=f"{zoo}: accuracy against novelty", xlabel="median agreement with the nearest train network "
               "(1 = a copy)", ylabel="mean test accuracy")  # fmt: skip
    fig.tight_layout()
    out["generation_novelty"] = fig
    fig, axes = plt.subplots(2, len(zoos), figsize=(5.5 * len(zoos), 7), squeeze=False)
    for j, zoo in enumerate(zoos):
        best = best_flow(frame, zoo)
        shown = ["test", *([best["model"]] if best else [])]
        data = ens.filter((pl.col("zoo") == zoo) & pl.col("model").is_in(shown)).to_pandas()
        for i, measure in enumerate(("accuracy", "nll")):
            sns.lineplot(data=data, x="k", y=measure, hue="model", marker="o", ax=axes[i, j])
            axes[i, j].set(xscale="log", xlabel="ensemble size K", title=f"{zoo}: BMA {measure}")
    fig.tight_layout()
    out["generation_bma"] = fig
    return out
