"""Fidelity against budget: how far the autoencoders are from the targets, and what scale would reach them.

One row per (zoo, encoder, budget point, split): the point's axis (``train_networks``, ``hidden`` or
``epochs``) and value, the optimizer steps it trained for, and the fidelity measures of its reconstructions;
plus, for the ``epochs`` runs, one row per validated epoch (axis ``steps``, split ``val``): the steps curve.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

from symzoo.report import tables  # noqa: E402

TARGETS = {
    "ident_recon": tables.TARGETS["ident"],
    "acc_gap": tables.TARGETS["acc_gap"],
    "kendall_tau": tables.TARGETS["kendall_tau"],
}
"""The fidelity targets drawn (|acc_gap| at most, the others at least)."""
XLABELS = {
    "steps": "optimizer steps (validation networks, one long run)",
    "hidden": "encoder width (hidden)",
    "train_networks": "training networks",
}
PANELS = (
    ("kl", "KL(orig ‖ recon)"),
    ("ident_recon", "identifiability recon → orig"),
    ("acc_gap", "accuracy gap (recon − orig)"),
    ("kendall_tau", "Kendall τ of accuracies"),
)


def budget_figure(table: pl.DataFrame, controls: pl.DataFrame | None = None) -> plt.Figure:
    """A column per budget axis, a row per measure; test networks; targets dashed, the oracle dotted."""
    test = (
        table.filter((pl.col("split") == "test") | (pl.col("axis") == "steps"))
        .with_columns((pl.col("zoo") + " / " + pl.col("encoder")).alias("run"))
        .filter(pl.col("axis") != "epochs")
    )
    axes_names = test["axis"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(PANELS), len(axes_names), figsize=(4.2 * len(axes_names), 12), squeeze=False)
    data = test.to_pandas()
    for j, axis in enumerate(axes_names):
        for i, (metric, name) in enumerate(PANELS):
            ax = axes[i, j]
            sns.lineplot(
                data=data[data.axis == axis],
                x="value",
                y=metric,
                hue="run",
                marker="o",
                errorbar=None,
                ax=ax,
                legend=(i == 0 and j == len(axes_names) - 1),
            )
            if metric in TARGETS:
                for sign in (1, -1) if metric == "acc_gap" else (1,):
                    ax.axhline(sign * TARGETS[metric], color="black", ls="--", lw=1)
            if metric == "kl" and controls is not None:
                for row in controls.iter_rows(named=True):
                    ax.axhline(row["kl"], color="grey", ls=":", lw=1)
            ax.set(xscale="log", xlabel=XLABELS.get(axis, axis) if i == len(PANELS) - 1 else "", ylabel=name)
            if axis != "steps":  # a few budget points: label them, not the decades
                values = sorted(data[data.axis == axis]["value"].unique())
                ax.set_xticks(values, [str(v) for v in values])
                ax.minorticks_off()
    if axes_names:
        axes[0, -1].legend(title="zoo / encoder", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Fidelity against budget (test networks; dashed: targets; dotted: nearest-train oracle's KL)")
    fig.tight_layout()
    return fig
