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
MERGE_MANY = "merge_many.parquet"
"""Every group of K networks merged by every method (``symzoo.merge.many``), stacked over the classifier zoos."""
MERGE_MANY_SUMMARY = "merge_many_summary.parquet"
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
    MERGE_MANY,
    MERGE_MANY_SUMMARY,
    INR_ORBIT,
)
"""Everything ``symzoo tables`` writes into ``results/tables/``, besides ``metrics/{zoo}.json``."""
FIGURES: tuple[str, ...] = ("interpolation", "orbit", "training", "fidelity", "merge_many", "inr_orbit")
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


def mark(ok: bool) -> str:
    """How a target reads in the markdown tables: reached, or (in bold) not."""
    return "(reached)" if ok else "(**not reached**)"
