"""Tables (polars) and figures (seaborn) of the experiments.

The names of the report's outputs live here, import-free, so the Snakefile and the stages read one list.
"""

CURVES = "curves.parquet"
BARRIERS = "barriers.parquet"
SUMMARY = "barriers_summary.parquet"
SUMMARY_MD = "barriers.md"
METRICS_DIR = "metrics"
"""One JSON of DVC metrics per zoo, ``metrics/{zoo}.json`` (one row each in ``dvc metrics show``)."""
ORBIT_CURVES = "orbit_curves.parquet"
ORBIT = "orbit_barriers.parquet"
ORBIT_SUMMARY = "orbit_summary.parquet"
TRAINING = "training.parquet"
INTERPOLATION_CSV = "interpolation.csv"
FIDELITY = "fidelity.parquet"
INR_ORBIT = "inr_orbit.parquet"
"""The INR orbit experiment per zoo, kind and method: render MSE at the midpoint and barrier (mean, std)."""
TABLES: tuple[str, ...] = (
    CURVES,
    BARRIERS,
    SUMMARY,
    SUMMARY_MD,
    ORBIT_CURVES,
    ORBIT,
    ORBIT_SUMMARY,
    TRAINING,
    INTERPOLATION_CSV,
    FIDELITY,
    INR_ORBIT,
)
"""Everything ``symzoo tables`` writes into ``results/tables/``, besides ``metrics/{zoo}.json``."""
FIGURES: tuple[str, ...] = ("interpolation", "orbit", "training", "fidelity", "inr_orbit")
"""Everything ``symzoo figures`` draws into ``results/figures/``, each as every one of FORMATS."""
FORMATS: tuple[str, ...] = ("png", "pdf")
TIMED: tuple[str, ...] = (
    "tables/finetune.parquet",
    "tables/finetune.md",
    "figures/finetune.png",
    "figures/finetune.pdf",
)
"""The report's outputs that hold wall-clock measurements (the fine-tuning table's seconds per network, the paper's
Table 1 column): the only ones a second run of the same config changes (``symzoo.report.finetune.TIME_COLUMNS``)."""
