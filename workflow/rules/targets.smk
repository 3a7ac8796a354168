# The target files of the stage groups (`snakemake data`, `zoos`, ...; DVC's stages run these), built here in one
# place, and the expanded lists rules read as inputs.
from symzoo.report import TABLES

FIGURES = expand(FIGURE, name=FIGURE_NAMES, ext=FORMATS)
ALL_TABLES = expand(TABLE, table=TABLES)
ALL_METRICS = expand(METRICS, zoo=ZOOS)
ALL_CURVES = expand(CURVES, zoo=ZOOS, method=METHODS)
ALL_ORBITS = expand(ORBIT, zoo=ZOOS)
ALL_FIDELITY = expand(FIDELITY_TABLE, zoo=ZOOS, name=FIDELITY)
ALL_MERGE_MANY = expand(MERGE_MANY, zoo=CLASSIFIER_ZOOS)

PREDICT_TARGETS = expand(
    PREDICTIONS, zoo=CLASSIFIER_ZOOS, predictor=PREDICTORS, seed=SEEDS
)
GENERALIZATION = [
    *expand(TABLE, table=GENERALIZATION_TABLES),
    *expand(FIGURE, name="generalization", ext=FORMATS),
]
"""The generalization table and figure: in the report group (DVC: one stage owns results/figures), when there
are predictions to tabulate."""

FINETUNE_TARGETS = [
    f
    for zoo in FINETUNE_ZOOS
    for folder in FINETUNE_FOLDERS
    for f in expand(FINETUNE_FILES, zoo=zoo, finetune=folder)
]
FINETUNE_REPORT = [
    *expand(TABLE, table=FINETUNE_TABLES),
    *expand(FIGURE, name="finetune", ext=FORMATS),
]
"""The fine-tuning table and figure (in the report group, when there are zoos to fine-tune)."""

GENERATE_TARGETS = [
    f
    for zoo in GENERATE_ZOOS
    for folder in GENERATE_FOLDERS[zoo]
    for f in expand(GENERATE_FILES, zoo=zoo, generator=folder)
]
GENERATE_REPORT = [
    *expand(TABLE, table=GENERATE_TABLES),
    *expand(FIGURE, name=GENERATE_FIGURES, ext=FORMATS),
]
"""The generation tables and figures (in the report group, when there are zoos to generate)."""

BUDGET_TARGETS = expand(
    BUDGET_FIDELITY,
    zoo=CLASSIFIER_ZOOS,
    encoder=BUDGET_ENCODERS,
    point=BUDGET,
)
"""The budget points (`snakemake budget`; not part of `all`)."""

STAGES = {
    "data": expand(DATASET, dataset=DATASETS),
    "zoos": [f for zoo in ZOOS for f in expand(ZOO_FILES, zoo=zoo)],
    "encoders": [
        f
        for zoo in ZOOS
        for encoder in ENCODERS
        for f in expand(ENCODER_FILES, zoo=zoo, encoder=encoder)
    ],
    "merge": [*ALL_CURVES, *ALL_ORBITS, *ALL_FIDELITY, *ALL_MERGE_MANY],
    "report": [
        *ALL_TABLES,
        *ALL_METRICS,
        *FIGURES,
        *(GENERALIZATION if PREDICT_TARGETS else []),
        *(FINETUNE_REPORT if FINETUNE_TARGETS else []),
        *(GENERATE_REPORT if GENERATE_TARGETS else []),
    ],
    "predict": PREDICT_TARGETS,
    "finetune": FINETUNE_TARGETS,
    "generate": GENERATE_TARGETS,
}
"""The targets of each stage group (`snakemake zoos`, ...; DVC's stages run these)."""
