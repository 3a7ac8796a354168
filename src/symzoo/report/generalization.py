"""Generalization prediction: per-seed metrics, their mean ± std over seeds, markdown and a figure.

Input: the stacked ``predictions.parquet`` of every (zoo, model, seed) (:mod:`symzoo.stages.predict`). For each:
Kendall tau, R² and L1 of the predictions on the test networks, and tau after a random permutation
(``tau_permuted``) and after a random element of the whole symmetry group (``tau_transformed``) of every
network: an invariant predictor keeps its tau exactly, the flat MLP does not.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

from symzoo.metrics import regression_metrics  # noqa: E402

METRICS = ("tau", "r2", "l1", "tau_permuted", "tau_transformed")


def per_seed(predictions: pl.DataFrame) -> pl.DataFrame:
    """One row per (zoo, model, seed) with :data:`METRICS`."""
    rows = []
    for (zoo, model, seed), group in predictions.group_by(["zoo", "model", "seed"], maintain_order=True):
        true = group["accuracy"].to_numpy()
        row = {"zoo": zoo, "model": model, "seed": seed} | regression_metrics(group["predicted"].to_numpy(), true)
        for column in ("permuted", "transformed"):
            row[f"tau_{column}"] = regression_metrics(group[f"predicted_{column}"].to_numpy(), true)["tau"]
        rows.append(row)
    return pl.DataFrame(rows).sort("zoo", "model", "seed")


def summary(table: pl.DataFrame) -> pl.DataFrame:
    """Mean and std over seeds of every metric, per zoo and model (n seeds)."""
    return (
        table.group_by(["zoo", "model"], maintain_order=True)
        .agg(
            pl.len().alias("seeds"),
            *[pl.col(m).mean().alias(f"{m}_mean") for m in METRICS],
            *[pl.col(m).std().alias(f"{m}_std") for m in METRICS],
        )
        .sort("zoo", pl.col("tau_mean"), descending=[False, True])
    )


def markdown(summary_table: pl.DataFrame) -> str:
    header = ["zoo", "model", "seeds", *METRICS]
    lines = [
        "# Generalization prediction (test networks; mean ± std over seeds)\n",
        "Kendall τ, R² and L1 of the predicted test accuracy; `tau_permuted` / `tau_transformed`: τ after a random",
        "permutation / a random element of the whole symmetry group (with the activation's sign flips or positive",
        "scalings) of every test network. An invariant predictor keeps its τ.\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in summary_table.iter_rows(named=True):
        cells = [row["zoo"], row["model"], str(row["seeds"])]
        cells += [f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std'] or 0:.3f}" for m in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(predictions: pl.DataFrame, table: pl.DataFrame) -> plt.Figure:
    """Per zoo: predicted vs true accuracy (first seed, a colour per model) and tau per model (mean ± std)."""
    zoos = predictions["zoo"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(2, len(zoos), figsize=(5.5 * len(zoos), 9), squeeze=False)
    first = predictions.filter(pl.col("seed") == pl.col("seed").min().over("zoo", "model")).to_pandas()
    scores = table.to_pandas()
    for j, zoo in enumerate(zoos):
        ax = axes[0, j]
        sns.scatterplot(data=first[first.zoo == zoo], x="accuracy", y="predicted", hue="model", s=12, ax=ax)
        lo, hi = first[first.zoo == zoo][["accuracy", "predicted"]].min().min(), 1.0
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--")
        ax.set(title=zoo, xlabel="true test accuracy", ylabel="predicted test accuracy")
        ax = axes[1, j]
        sns.barplot(data=scores[scores.zoo == zoo], x="model", y="tau", errorbar="sd", color="0.6", ax=ax)
        ax.set(xlabel="", ylabel="Kendall τ (test; mean ± std over seeds)")
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Generalization prediction from weights")
    fig.tight_layout()
    return fig
