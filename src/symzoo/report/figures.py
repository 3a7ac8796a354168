"""The paper's figures (seaborn), drawn from the tables in ``results/tables/`` alone.

- ``interpolation``: ``score`` and ``loss`` against alpha (test accuracy and cross-entropy; INR zoos: PSNR and
  render MSE against the mixed image, labels from :mod:`symzoo.report.units` by the curves' ``task``), mean ± std
  over pairs, a line per method, a column per zoo;
- ``orbit``: barriers of a network against a random symmetry transform of itself, per method and kind;
- ``training``: the encoders' validation fidelity (KL and identifiability) against optimizer steps;
- ``fidelity``: KL(orig || recon) and identifiability of each autoencoder beside the controls (test networks);
- ``merge_many``: merging K networks into one: the merged network's test accuracy and its KL from the parents
  against K, mean ± 95% CI over groups, a line per method, the parents' mean and best accuracy dashed, a column
  per classifier zoo;
- ``inr_orbit``: the paper's INR appendix figure: render MSE against the ground truth along the orbit
  interpolation, mean ± std over runs, panels P / D / PD, a line per method (naive, linear assignment, the
  autoencoders, and the medoid control: one train INR for every input), with the noisy copies' own MSE as a
  dashed line (the level a faithful method keeps); a row per INR zoo (a placeholder when the config has none).
Every method has one colour in every figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

import symzoo.report as out  # noqa: E402
from symzoo.merge.methods import LABELS, label  # noqa: E402
from symzoo.report.units import UNITS, units  # noqa: E402


def palette(methods: list[str]) -> dict[str, tuple]:
    """One colour per method label: baselines first in a fixed order, then the autoencoders sorted."""
    order = [m for m in LABELS if m in methods] + sorted(m for m in methods if m not in LABELS)
    return dict(zip(map(label, order), sns.color_palette("colorblind", len(order))))


def interpolation_figure(curves: pl.DataFrame) -> plt.Figure:
    zoos = curves["zoo"].unique(maintain_order=True).to_list()
    data = curves.with_columns(pl.col("method").map_elements(label, return_dtype=pl.String)).to_pandas()
    colours = palette(curves["method"].unique().to_list())
    fig, axes = plt.subplots(2, len(zoos), figsize=(4.5 * len(zoos), 7), squeeze=False, sharex=True)
    for j, zoo in enumerate(zoos):
        ends = curves.filter(pl.col("zoo") == zoo)
        u = units(ends["task"][0])  # the zoo's task: what score and loss are
        for i, metric in enumerate(("score", "loss")):
            ax = axes[i, j]
            sns.lineplot(
                data=data[data.zoo == zoo],
                x="alpha",
                y=metric,
                hue="method",
                palette=colours,
                errorbar="sd",
                ax=ax,
                legend=(i == 0 and j == len(zoos) - 1),
            )
            ax.scatter(
                [0.0, 1.0],
                [ends[f"orig_{metric}_a"].mean(), ends[f"orig_{metric}_b"].mean()],
                marker="D",
                color="black",
                zorder=5,
                label="original networks" if i == 0 and j == len(zoos) - 1 else None,
            )
            ax.set(xlabel="α" if i == 1 else "", ylabel=u.axis_label(metric), title=zoo if i == 0 else "")
    if len(zoos):
        axes[0, -1].legend(title="method", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(
        "Linear interpolation between pairs: (1 − α) θ_A + α θ_B (mean ± std over pairs; ◆ the original networks)"
    )
    fig.tight_layout()
    return fig


def orbit_figure(orbit: pl.DataFrame) -> plt.Figure:
    zoos = orbit["zoo"].unique(maintain_order=True).to_list()
    data = orbit.with_columns(pl.col("method").map_elements(label, return_dtype=pl.String)).to_pandas()
    colours = palette(orbit["method"].unique().to_list())
    fig, axes = plt.subplots(1, len(zoos), figsize=(5 * len(zoos), 4), squeeze=False)
    for j, zoo in enumerate(zoos):
        ax = axes[0, j]
        sns.barplot(
            data=data[data.zoo == zoo],
            x="kind",
            y="loss_barrier",
            hue="method",
            palette=colours,
            errorbar=("ci", 95),
            seed=0,
            ax=ax,
            legend=(j == len(zoos) - 1),
        )
        ax.set(xlabel="symmetry transform", ylabel="loss barrier (mean, 95% CI)", title=zoo)
    if len(zoos):
        axes[0, -1].legend(title="method", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Orbit experiment: a network interpolated with a transform of itself (0 = invariant)")
    fig.tight_layout()
    return fig


def training_figure(training: pl.DataFrame) -> plt.Figure:
    """Validation fidelity against optimizer steps: how far training went, and where it was heading."""
    zoos = training["zoo"].unique(maintain_order=True).to_list()
    data = training.filter(pl.col("val_kl").is_not_null()).to_pandas()
    rows = (("val_kl", "validation KL(orig ‖ recon)"), ("val_ident_recon", "validation identifiability"))
    fig, axes = plt.subplots(2, len(zoos), figsize=(4.5 * len(zoos), 7), squeeze=False, sharex="col")
    for j, zoo in enumerate(zoos):
        for i, (metric, name) in enumerate(rows):
            sns.lineplot(
                data=data[data.zoo == zoo],
                x="step",
                y=metric,
                hue="encoder",
                errorbar=None,
                ax=axes[i, j],
                legend=(i == 0 and j == len(zoos) - 1),
            )
            axes[i, j].set(ylabel=name, xlabel="optimizer steps" if i == 1 else "", title=zoo if i == 0 else "")
        axes[0, j].set_yscale("log")
        axes[1, j].set_ylim(0, 1)
    fig.suptitle("Autoencoder training: fidelity on the validation networks against optimizer steps")
    fig.tight_layout()
    return fig


FIDELITY_DISTANCE = f"{UNITS['classification'].dist}(orig ‖ recon), test (INR zoos: {UNITS['inr'].dist})"
"""The fidelity figure's distance axis: ``fidelity.parquet``'s ``kl`` is a render MSE for INR zoos, and the table
has no task column to tell them apart."""


def fidelity_figure(fidelity: pl.DataFrame) -> plt.Figure:
    """KL(orig ‖ recon) and identifiability on the test networks, autoencoders beside the controls."""
    test = fidelity.filter(pl.col("split") == "test")
    zoos = test["zoo"].unique(maintain_order=True).to_list()
    long = test.unpivot(
        index=["zoo", "model", "chance"], on=["ident_recon", "ident_orig"], variable_name="direction", value_name="top1"
    ).to_pandas()
    data = test.to_pandas()
    fig, axes = plt.subplots(2, len(zoos), figsize=(5 * len(zoos), 7.5), squeeze=False)
    for j, zoo in enumerate(zoos):
        sns.barplot(data=data[data.zoo == zoo], x="model", y="kl", color="0.6", errorbar=None, ax=axes[0, j])
        axes[0, j].set(ylabel=FIDELITY_DISTANCE, xlabel="", title=zoo)
        sns.barplot(data=long[long.zoo == zoo], x="model", y="top1", hue="direction", errorbar=None, ax=axes[1, j])
        axes[1, j].axhline(float(data[data.zoo == zoo].chance.iloc[0]), color="black", ls="--", label="chance")
        axes[1, j].set(ylabel="identifiability (top-1)", xlabel="", ylim=(0, 1))
        for ax in axes[:, j]:
            ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Fidelity of reconstructions (test networks, test images) beside controls fitted on train")
    fig.tight_layout()
    return fig


INR_PANELS = (("permutation", "P (permutations)"), ("scaling", "D (sign flips)"), ("both", "PD"))
INR_LABELS = {
    "naive": "naive",
    "rebasin_scaling": "linear assignment (signed)",
    "rebasin": "linear assignment (P)",
    "medoid": "medoid (control)",
}


def inr_orbit_figure(orbit: pl.DataFrame) -> plt.Figure:
    """The INR orbit curves (``task == "inr"`` rows of the orbit curves table), the paper's four methods: naive,
    signed linear assignment (``rebasin_scaling``; ``rebasin`` if that was not run) and the autoencoders, beside
    the medoid control and the copies' own level (see the module docstring)."""
    inr = orbit.filter(pl.col("task") == "inr") if "task" in orbit.columns else orbit.clear()
    if not len(inr):
        fig = plt.figure(figsize=(6, 2))
        fig.text(0.5, 0.5, "no INR zoo in this config", ha="center", va="center")
        return fig
    methods = inr["method"].unique().to_list()
    assignment = "rebasin_scaling" if "rebasin_scaling" in methods else "rebasin"
    keep = ["naive", assignment, *sorted(m for m in methods if m.startswith("ae_")), "medoid"]
    keep = [m for m in keep if m in methods]
    inr = inr.filter(pl.col("method").is_in(keep))
    names = {m: INR_LABELS.get(m, label(m)) for m in keep}
    data = inr.with_columns(pl.col("method").replace_strict(names)).to_pandas()
    base = sns.color_palette("colorblind", 10)
    colours = dict(zip(names.values(), [base[i] for i in (0, 2, 1, 4, 3, 5, 6, 7)]))
    zoos = inr["zoo"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(zoos), 3, figsize=(13, 3.8 * len(zoos)), squeeze=False, sharey="row")
    for i, zoo in enumerate(zoos):
        for j, (kind, title) in enumerate(INR_PANELS):
            ax = axes[i, j]
            part = data[(data.zoo == zoo) & (data.kind == kind)]
            if len(part):
                sns.lineplot(
                    data=part,
                    x="alpha",
                    y="loss",
                    hue="method",
                    hue_order=list(names.values()),
                    palette=colours,
                    errorbar="sd",
                    ax=ax,
                    legend=(i == 0 and j == 2),
                )
                copies = float(((part.orig_loss_a + part.orig_loss_b) / 2).mean())
                ax.axhline(copies, color="black", linestyle="--", linewidth=1, label="the noisy copies themselves")
            ylabel = f"{units('inr').loss} vs ground truth" if j == 0 else ""
            ax.set(xlabel="α", ylabel=ylabel, title=f"{zoo}: {title}")
    if axes[0, 2].get_legend() is not None:
        axes[0, 2].legend(title="method", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("INR orbit: noisy transformed copies of a SIREN interpolated pairwise (mean ± std over runs)")
    fig.tight_layout()
    return fig


def merge_many_figure(many: pl.DataFrame) -> plt.Figure:
    zoos = many["zoo"].unique(maintain_order=True).to_list()
    data = many.with_columns(pl.col("method").map_elements(label, return_dtype=pl.String)).to_pandas()
    colours = palette(many["method"].unique().to_list())
    fig, axes = plt.subplots(2, len(zoos), figsize=(5 * len(zoos), 7), squeeze=False, sharex=True)
    for j, zoo in enumerate(zoos):
        rows = data[data.zoo == zoo]
        for i, (metric, ylabel) in enumerate((("accuracy", "test accuracy"), ("dist", "KL(parent ‖ merged)"))):
            ax = axes[i, j]
            last = i == 0 and j == len(zoos) - 1
            sns.lineplot(
                data=rows, x="k", y=metric, hue="method", palette=colours, errorbar=("ci", 95), seed=0, marker="o",
                ax=ax, legend=last,
            )  # fmt: skip
            if metric == "accuracy":
                parents = rows.groupby("k")[["parents_mean_accuracy", "parents_best_accuracy"]].mean()
                ax.plot(parents.index, parents.parents_mean_accuracy, "k--", label="parents' mean" if last else None)
                ax.plot(parents.index, parents.parents_best_accuracy, "k:", label="best parent" if last else None)
            ks = sorted(rows.k.unique())
            ax.set(xscale="log", xlabel="K (networks merged)" if i == 1 else "", ylabel=ylabel)
            ax.set(title=zoo if i == 0 else "")
            ax.set_xticks(ks, [str(k) for k in ks])
    if len(zoos):
        axes[0, -1].legend(title="method", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Merging K networks into one (mean, 95% CI over groups; dashed: the parents' mean, dotted: the best)")
    fig.tight_layout()
    return fig


DRAW = {
    "interpolation": (out.CURVES, interpolation_figure),
    "orbit": (out.ORBIT, orbit_figure),
    "training": (out.TRAINING, training_figure),
    "fidelity": (out.FIDELITY, fidelity_figure),
    "merge_many": (out.MERGE_MANY, merge_many_figure),
    "inr_orbit": (out.ORBIT_CURVES, inr_orbit_figure),
}
"""Each figure of :data:`symzoo.report.FIGURES`: the table it is drawn from and how."""


def draw(name: str, table: pl.DataFrame) -> plt.Figure:
    """The figure ``name`` from its table (an empty figure for an empty table)."""
    return DRAW[name][1](table) if len(table) or name == "inr_orbit" else plt.figure()
