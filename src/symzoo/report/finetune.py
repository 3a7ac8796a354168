"""The fine-tuning table (Table 1 of the amortisation paper, with controls and fidelity), its targets and figure.

Input: the ``summary.json`` of every method folder of ``results/finetune/{zoo}/`` (:mod:`symzoo.stages.finetune`)
and the operators' ``history.parquet``. Every number is on the zoo's test networks and test images.

The targets, per zoo, judge the ScaleGMN-B operator (the first operator of kind ``scalegmn``) against the SGD
baseline at its largest budget and the controls: its accuracy above SGD's (cross-entropy objective); with the L1
term, sparser than SGD at an equal or lower test loss; its tuned networks closer to their inputs (KL) than the
best-train-network control's; Spearman(initial, tuned accuracy) > 0; and at least 100x faster per network than
fine-tuning one network alone with SGD to the accuracy it reaches (the SGD curve interpolated in epochs, one
network alone costing its measured seconds per epoch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

MEASURES = ("initial_accuracy", "accuracy", "max_accuracy", "ce", "loss", "l1", "initial_ce", "initial_l1",
            "sparsity", "kl", "agreement", "spearman")  # fmt: skip
OPERATOR_LABELS = {"scalegmn": "ScaleGMN-B", "scalegmn_broken": "ScaleGMN-B, symmetry broken", "ngnn": "NG-GNN"}
CONTROL_LABELS = {"initial": "initial networks (control)", "best_train": "best train network (control)"}
TIME_COLUMNS = ("seconds_per_network", "seconds_per_network_alone", "train_seconds")
"""Wall-clock measurements (they differ between runs of the same config; every other column does not)."""
SPEEDUP = 100.0
"""The operator must be at least this many times faster per network than SGD on one network to the same accuracy."""


def table(summaries: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """One row per (zoo, method folder) from ``zoo/method`` → that folder's summary."""
    rows = []
    for name, s in summaries.items():
        zoo, folder = name.split("/", 1)
        test = s["test"]
        rows.append(
            {
                "zoo": zoo,
                "method": folder,
                "kind": s["kind"],
                "objective": s["objective"],
                "l1_lambda": float(s["l1"]),
                "operator": s.get("operator"),
                "epochs": s.get("epochs"),
                "networks": s["networks"],
                "test_images": s["test_images"],
                "images_per_epoch": s.get("images_per_epoch"),
                "seconds_per_network": s["seconds_per_network"],
                "seconds_per_network_alone": s.get("seconds_per_network_alone"),
                "train_seconds": s.get("train_seconds"),
                **{m: _float(test.get(m)) for m in MEASURES},
            }
        )
    schema = {"epochs": pl.Int64, "images_per_epoch": pl.Int64, "operator": pl.String,
              "seconds_per_network_alone": pl.Float64, "train_seconds": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema_overrides=schema).sort("zoo", "objective", "kind", "epochs", "method")


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def label(row: Mapping[str, Any]) -> str:
    """How a method is named in the table."""
    if row["kind"] == "control":
        return CONTROL_LABELS.get(row["method"], row["method"])
    if row["kind"] == "sgd":
        return f"SGD, {row['epochs']} epochs"
    name = OPERATOR_LABELS.get(row["operator"], row["operator"])
    entry = row["method"].rsplit("_", 1)[0]
    return name if entry == row["operator"] else f"{name} ({entry})"


def _order(frame: pl.DataFrame) -> pl.DataFrame:
    """Controls (the initial networks first), SGD by budget, operators."""
    keys = {"_rank": pl.col("kind").replace_strict({"control": 0, "sgd": 1, "operator": 2}),
            "_later": pl.col("method") != "initial"}  # fmt: skip
    return frame.with_columns(**keys).sort("_rank", "_later", "epochs", "method").drop(*keys)


def _equivariant(frame: pl.DataFrame, objective: str) -> dict[str, Any] | None:
    rows = frame.filter((pl.col("operator") == "scalegmn") & (pl.col("objective") == objective))
    return rows.row(0, named=True) if len(rows) else None


def _sgd(frame: pl.DataFrame, objective: str) -> pl.DataFrame:
    return frame.filter((pl.col("kind") == "sgd") & (pl.col("objective") == objective)).sort("epochs")


def alone_seconds_to(frame: pl.DataFrame, objective: str, accuracy: float) -> tuple[float, str]:
    """Seconds for SGD on one network alone to reach mean test ``accuracy``: the SGD curve (epochs 0 = the initial
    networks) interpolated linearly in epochs, at the measured seconds per epoch of one network alone. Returns the
    seconds and how they relate: ``"="``, ``">"`` (SGD's largest budget does not reach it: a lower bound) or
    ``"0"`` (the initial networks already do)."""
    sgd = _sgd(frame, objective).drop_nulls("seconds_per_network_alone")
    if not len(sgd):
        return float("nan"), "="
    per_epoch = float((sgd["seconds_per_network_alone"] / sgd["epochs"]).mean())
    epochs = np.array([0.0, *sgd["epochs"].to_list()])
    accs = np.array([float(sgd["initial_accuracy"][0]), *sgd["accuracy"].to_list()])
    if accuracy <= accs[0]:
        return 0.0, "0"
    above = np.flatnonzero(accs >= accuracy)
    if not len(above):
        return per_epoch * epochs[-1], ">"
    i = above[0]
    e = epochs[i - 1] + (epochs[i] - epochs[i - 1]) * (accuracy - accs[i - 1]) / (accs[i] - accs[i - 1])
    return per_epoch * e, "="


def targets(frame: pl.DataFrame) -> pl.DataFrame:
    """Per zoo, each target of the issue with the measured value, what it is compared with, and whether it holds."""
    rows = []
    for zoo in frame["zoo"].unique(maintain_order=True).to_list():
        z = frame.filter(pl.col("zoo") == zoo)

        def add(target: str, value: float, against: float, reached: bool, note: str = "", zoo: str = zoo) -> None:
            rows.append({"zoo": zoo, "target": target, "value": value, "against": against,
                         "reached": bool(reached), "note": note})  # fmt: skip

        ce, l1 = _equivariant(z, "ce"), _equivariant(z, "l1")
        best = z.filter(pl.col("method") == "best_train")
        if ce is not None:
            sgd = _sgd(z, "ce")
            if len(sgd):
                top = sgd.row(-1, named=True)
                add(f"CE operator's mean accuracy above SGD at {top['epochs']} epochs", ce["accuracy"],
                    top["accuracy"], ce["accuracy"] > top["accuracy"])  # fmt: skip
            if len(best):
                add("KL(orig ‖ tuned) below the best-train-network control's", ce["kl"], best["kl"][0],
                    ce["kl"] < best["kl"][0])  # fmt: skip
            add("Spearman(initial, tuned accuracy) > 0", ce["spearman"], 0.0, ce["spearman"] > 0)
            seconds, how = alone_seconds_to(z, "ce", ce["accuracy"])
            ratio = seconds / ce["seconds_per_network"] if ce["seconds_per_network"] > 0 else float("nan")
            note = {"0": "the initial networks already reach that accuracy", ">": "a lower bound: SGD's largest "
                    "budget does not reach that accuracy", "=": ""}[how]  # fmt: skip
            add(f"operator ≥ {SPEEDUP:g}x faster than SGD alone to its accuracy", ratio, SPEEDUP,
                how != "0" and ratio >= SPEEDUP, note)  # fmt: skip
        if l1 is not None:
            sgd = _sgd(z, "l1")
            if len(sgd):
                top = sgd.row(-1, named=True)
                add(f"L1 operator sparser than SGD at {top['epochs']} epochs (%)", l1["sparsity"], top["sparsity"],
                    l1["sparsity"] > top["sparsity"])  # fmt: skip
                add(f"L1 operator's test loss (CE + λ L1) at most SGD's at {top['epochs']} epochs", l1["loss"],
                    top["loss"], l1["loss"] <= top["loss"])  # fmt: skip
    return pl.DataFrame(rows, schema={"zoo": pl.String, "target": pl.String, "value": pl.Float64,
                                      "against": pl.Float64, "reached": pl.Boolean, "note": pl.String})  # fmt: skip


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _seconds(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "0 (no work per network)" if value == 0 else f"{value:.3g}"


def markdown(frame: pl.DataFrame, goals: pl.DataFrame) -> str:
    lines = [
        "# Single-shot fine-tuning (test networks, test images)\n",
        "Each test network is fine-tuned by every method; all numbers are means over the test networks on the test",
        "images, except `max acc`. `KL` is KL(original ‖ tuned) at T = 1 and `agreement` the fraction of images",
        "where the tuned network predicts the original's class: how much of its input a method keeps. `Spearman`:",
        "of the initial and tuned accuracies (a method that emits one network for every input scores ~0 or NaN).",
        "Seconds per network: the operator's one forward pass; SGD's vmapped population (all test networks at",
        "once) and one network alone (a torch.optim loop, the paper's protocol). The controls do no work per",
        "network.\n",
    ]
    for zoo in frame["zoo"].unique(maintain_order=True).to_list():
        z = _order(frame.filter(pl.col("zoo") == zoo))
        first = z.row(0, named=True)
        per_epoch = z["images_per_epoch"].drop_nulls()
        epoch = f"; one SGD epoch: {per_epoch[0]:,} training images" if len(per_epoch) else ""
        lines.append(f"## {zoo} ({first['networks']} test networks, {first['test_images']} test images{epoch})\n")
        ce = z.filter(pl.col("objective") == "ce")
        lines += [
            "### Cross-entropy (λ = 0)\n",
            "| method | mean acc | max acc | test CE | KL | agreement | Spearman | s / network | s / network alone |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in ce.iter_rows(named=True):
            lines.append(
                f"| {label(row)} | {_fmt(row['accuracy'])} | {_fmt(row['max_accuracy'])} | {_fmt(row['ce'])} | "
                f"{_fmt(row['kl'])} | {_fmt(row['agreement'])} | {_fmt(row['spearman'], 2)} | "
                f"{_seconds(row['seconds_per_network'])} | {_seconds(row['seconds_per_network_alone'])} |"
            )
        l1 = z.filter(pl.col("objective") == "l1")
        if len(l1):
            lam = l1["l1_lambda"][0]
            first_l1 = l1.row(0, named=True)
            lines += [
                f"\n### With the L1 term (λ = {lam:g}; sparsity: reduction of the L1 norm of all parameters, %)\n",
                "| method | mean acc | test loss (CE + λ L1) | sparsity | KL | s / network | s / network alone |",
                "|---|---|---|---|---|---|---|",
                f"| {CONTROL_LABELS['initial']} | {_fmt(first_l1['initial_accuracy'])} | "
                f"{_fmt(first_l1['initial_ce'] + lam * first_l1['initial_l1'])} | 0.0 | 0.000 | – | – |",
            ]
            for row in l1.iter_rows(named=True):
                lines.append(
                    f"| {label(row)} | {_fmt(row['accuracy'])} | {_fmt(row['loss'])} | {_fmt(row['sparsity'], 1)} | "
                    f"{_fmt(row['kl'])} | {_seconds(row['seconds_per_network'])} | "
                    f"{_seconds(row['seconds_per_network_alone'])} |"
                )
        g = goals.filter(pl.col("zoo") == zoo)
        if len(g):
            lines += [
                "\n### Targets (ScaleGMN-B operator)\n",
                "| target | value | against | reached |",
                "|---|---|---|---|",
            ]
            for row in g.iter_rows(named=True):
                note = f" ({row['note']})" if row["note"] else ""
                lines.append(f"| {row['target']} | {_fmt(row['value'])}{note} | {_fmt(row['against'])} | "
                             f"{'yes' if row['reached'] else '**no**'} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def figure(frame: pl.DataFrame, histories: pl.DataFrame) -> plt.Figure:
    """Per zoo: mean test accuracy against seconds per network (SGD's budgets as curves, population and alone; the
    operators as points; the controls as lines), and the operators' validation objective over their training."""
    zoos = frame["zoo"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(zoos), 2, figsize=(12, 4.5 * len(zoos)), squeeze=False)
    colors = dict(zip(("ce", "l1"), sns.color_palette("deep", 2), strict=True))
    for i, zoo in enumerate(zoos):
        z = frame.filter(pl.col("zoo") == zoo)
        ax = axes[i, 0]
        for objective, color in colors.items():
            sgd = _sgd(z, objective)
            if not len(sgd):
                continue
            ax.plot(sgd["seconds_per_network"], sgd["accuracy"], "o-", color=color,
                    label=f"SGD ({objective}), vmapped population")  # fmt: skip
            ax.plot(sgd["seconds_per_network_alone"], sgd["accuracy"], "o--", color=color, alpha=0.6,
                    label=f"SGD ({objective}), one network alone")  # fmt: skip
            for row in sgd.iter_rows(named=True):
                ax.annotate(f"{row['epochs']}", (row["seconds_per_network"], row["accuracy"]), fontsize=7)
        for row in z.filter(pl.col("kind") == "operator").iter_rows(named=True):
            marker = "*" if row["operator"] == "scalegmn" else "X"
            ax.scatter(row["seconds_per_network"], row["accuracy"], s=140, marker=marker,
                       color=colors[row["objective"]], edgecolor="black", zorder=3,
                       label=f"{label(row)} ({row['objective']})")  # fmt: skip
        for row, style in zip(z.filter(pl.col("kind") == "control").iter_rows(named=True), (":", "-."), strict=False):
            ax.axhline(row["accuracy"], color="0.3", ls=style, lw=1, label=label(row))
        ax.set(
            xscale="log", xlabel="seconds per network", ylabel="mean test accuracy", title=f"{zoo}: accuracy vs time"
        )
        ax.legend(fontsize=7)
        ax = axes[i, 1]
        h = histories.filter(pl.col("zoo") == zoo)
        if len(h):
            sns.lineplot(data=h.to_pandas(), x="epoch", y="val_loss", hue="method", marker="o", ax=ax)
        ax.set(xlabel="epoch", ylabel="validation objective (val networks, val images)",
               title=f"{zoo}: operators' training")  # fmt: skip
    fig.suptitle("Single-shot fine-tuning: one forward pass against SGD")
    fig.tight_layout()
    return fig
