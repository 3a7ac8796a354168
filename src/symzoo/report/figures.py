"""The paper's figures (seaborn), drawn from the tables in ``results/tables/`` alone.

- ``interpolation``: test accuracy and cross-entropy against alpha, mean ± std over pairs, a line per method,
  a column per zoo;
- ``orbit``: barriers of a network against a random symmetry transform of itself, per method and kind;
- ``training``: the encoders' validation KL and accuracy gap per epoch.
Every method has one colour in every figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402

from symzoo.atomic import atomic_path  # noqa: E402
from symzoo.report.tables import CURVES, ORBIT, TRAINING  # noqa: E402

FIGURES = ("interpolation", "orbit", "training")
FORMATS = ("png", "pdf")
LABELS = {
    "naive": "naive",
    "rebasin": "Git Re-Basin",
    "rebasin_scaling": "Re-Basin + scaling",
    "canonical": "canonical form",
}


def label(method: str) -> str:
    """Readable name of a method (``ae_<encoder>`` → ``AE (<encoder>)``)."""
    return LABELS.get(method, f"AE ({method.removeprefix('ae_')})" if method.startswith("ae_") else method)


def palette(methods: list[str]) -> dict[str, tuple]:
    """One colour per method label: baselines first in a fixed order, then the autoencoders sorted."""
    order = [m for m in LABELS if m in methods] + sorted(m for m in methods if m not in LABELS)
    return dict(zip(map(label, order), sns.color_palette("colorblind", len(order))))


def _save(fig: plt.Figure, out_dir: Path, name: str) -> None:
    for fmt in FORMATS:
        with atomic_path(Path(out_dir) / f"{name}.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150)
    plt.close(fig)


def interpolation_figure(curves: pl.DataFrame) -> plt.Figure:
    zoos = curves["zoo"].unique(maintain_order=True).to_list()
    data = curves.with_columns(pl.col("method").map_elements(label, return_dtype=pl.String)).to_pandas()
    colours = palette(curves["method"].unique().to_list())
    fig, axes = plt.subplots(2, len(zoos), figsize=(4.5 * len(zoos), 7), squeeze=False, sharex=True)
    for j, zoo in enumerate(zoos):
        for i, (metric, name) in enumerate((("accuracy", "test accuracy"), ("loss", "test cross-entropy"))):
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
            ax.set(xlabel="α" if i == 1 else "", ylabel=name, title=zoo if i == 0 else "")
    if len(zoos):
        axes[0, -1].legend(title="method", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Linear interpolation between pairs: (1 − α) θ_A + α θ_B (mean ± std over pairs)")
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
    zoos = training["zoo"].unique(maintain_order=True).to_list()
    data = training.to_pandas()
    fig, axes = plt.subplots(2, len(zoos), figsize=(4.5 * len(zoos), 7), squeeze=False, sharex="col")
    for j, zoo in enumerate(zoos):
        for i, (metric, name) in enumerate((("val_kl", "validation KL"), ("acc_gap", "accuracy gap (orig − recon)"))):
            sns.lineplot(
                data=data[data.zoo == zoo],
                x="epoch",
                y=metric,
                hue="encoder",
                ax=axes[i, j],
                legend=(i == 0 and j == len(zoos) - 1),
            )
            axes[i, j].set(ylabel=name, title=zoo if i == 0 else "")
        axes[0, j].set_yscale("log")
    fig.suptitle("Autoencoder training (validation split)")
    fig.tight_layout()
    return fig


def write_figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """Draw every figure from the tables in ``tables_dir`` into ``out_dir`` (PNG and PDF)."""
    tables_dir = Path(tables_dir)
    drawn = []
    for name, table, draw in (
        ("interpolation", CURVES, interpolation_figure),
        ("orbit", ORBIT, orbit_figure),
        ("training", TRAINING, training_figure),
    ):
        path = tables_dir / table
        if not path.is_file():
            raise FileNotFoundError(f"figures: missing table {path}")
        frame = pl.read_parquet(path)
        fig = draw(frame) if len(frame) else plt.figure()
        _save(fig, out_dir, name)
        drawn += [Path(out_dir) / f"{name}.{fmt}" for fmt in FORMATS]
    return drawn
