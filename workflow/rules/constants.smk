# Names the config defines, the wildcard constraints, and every path pattern of results/ (each written once
# here; rules, params and targets use these constants).
from symzoo.align.represent import REPRESENTATIONS
from symzoo.config import family_zoos, zoo_activation
from symzoo.fit.finetune_methods import methods as finetune_methods
from symzoo.fit.generation_methods import CONTROLS as GENERATE_CONTROLS
from symzoo.fit.generation_methods import models_for, representations_for
from symzoo.merge.methods import MEDOID, autoencoder_method, autoencoder_methods
from symzoo.report import FIGURES as FIGURE_NAMES
from symzoo.report import FORMATS, METRICS_DIR

DATASETS = list(config["datasets"])
ZOOS = list(config["zoos"])
ENCODERS = list(config["encoders"])
METHODS = [
    *config["merge"]["methods"],
    MEDOID,
    *[method for encoder in ENCODERS for method in autoencoder_methods(encoder)],
]
PREDICTORS = list(config["predict"]["models"])
SEEDS = config["predict"]["seeds"]
CONTROLS = "controls"
"""The fidelity of the controls (identity, medoid, mean prediction, nearest train), beside each encoder's."""
FIDELITY = [*ENCODERS, CONTROLS]


def zoos_from(source):
    """The zoos whose entries have this `source` (the zoos of each source have their own rule, e.g. zoo_merge
    builds those of `generate`)."""
    return [name for name, zoo in config["zoos"].items() if zoo["source"] == source]


def is_inr_zoo(zoo):
    """Whether zoo `zoo`'s networks are INRs (SIRENs fitted to images) rather than image classifiers."""
    return config["zoos"][zoo]["source"] == "inr"


INR_ZOOS = [zoo for zoo in ZOOS if is_inr_zoo(zoo)]
CLASSIFIER_ZOOS = [zoo for zoo in ZOOS if not is_inr_zoo(zoo)]
"""INR zoos (SIRENs) go through the same encoders, merging and report; generalization prediction (of test
accuracy) and the budget curves are for the classifier zoos."""


FINETUNE_ZOOS = family_zoos(config, "finetune")
FINETUNE_METHODS = finetune_methods(config["finetune"])
"""Single-shot fine-tuning: the methods by name (controls, `sgd_<objective>`, `<operator>_<objective>`)."""
FINETUNE_SINGLE = [m.name for m in FINETUNE_METHODS.values() if m.kind != "sgd"]
"""The methods that write one folder of their own name (controls and operators); SGD writes one per budget."""
FINETUNE_FOLDERS = [d for m in FINETUNE_METHODS.values() for d in m.dirs]
FINETUNE_OBJECTIVES = config["finetune"]["sgd"]["objectives"]

GENERATE_ZOOS = family_zoos(config, "generate")
GENERATE_MODELS = {
    zoo: models_for(config["generate"], zoo_activation(config, zoo))
    for zoo in GENERATE_ZOOS
}
"""Generative models of weights, per zoo (a sphere model only on ReLU zoos); every zoo also gets the controls."""
GENERATE_FOLDERS = {
    zoo: [*GENERATE_CONTROLS, *GENERATE_MODELS[zoo]] for zoo in GENERATE_ZOOS
}
GENERATE_REPRESENTATIONS = {
    zoo: representations_for(config["generate"], zoo_activation(config, zoo))
    for zoo in GENERATE_ZOOS
}


BUDGET_AXES = ("train_networks", "hidden", "epochs")
BUDGET = [f"{axis}-{value}" for axis in BUDGET_AXES for value in config["budget"][axis]]
"""Budget points (`snakemake budget`; not part of `all`): `<axis>-<value>`."""
BUDGET_ENCODERS = config["budget"]["encoders"] or ENCODERS


def one_of(names):
    """A wildcard pattern matching exactly these names (nothing, if there are none)."""
    return "|".join(names) or "(?!)"


wildcard_constraints:
    dataset=one_of(DATASETS),
    zoo=one_of(ZOOS),
    shard=r"\d{4}",
    encoder=one_of(ENCODERS),
    point=r"(train_networks|hidden|epochs)-\d+",
    predictor=one_of(PREDICTORS),
    seed=r"\d+",
    method=one_of(METHODS),
    finetune=one_of(FINETUNE_SINGLE),
    objective=one_of(FINETUNE_OBJECTIVES),
    representation=one_of(REPRESENTATIONS),
    generator=one_of(
        {name for folders in GENERATE_FOLDERS.values() for name in folders}
    ),


# Path patterns, with the wildcards of the rules that write them.
def files_in(directory, *names):
    """The paths of `names` in `directory` (plain strings: expand() takes them, as it does not multiext's)."""
    return [f"{directory}/{name}" for name in names]


DOWNLOADS = "results/downloads"
DATASET = "results/data/{dataset}.npz"

ZOO_DIR = "results/zoo/{zoo}"
ZOO_FILES = files_in(ZOO_DIR, "params.npy", "models.parquet", "arch.json")
SHARD_DIR = f"{ZOO_DIR}/shards/{{shard}}"
SHARD_FILES = files_in(SHARD_DIR, "params.npy", "models.parquet")

ENCODER_OUTPUTS = ("model.pt", "history.parquet", "summary.json")
"""What `symzoo encoder` writes into its --out directory (an encoder's, or a budget point's)."""
ENCODER_DIR = "results/encoders/{zoo}/{encoder}"
ENCODER_FILES = files_in(ENCODER_DIR, *ENCODER_OUTPUTS)
ENCODER_MODEL = f"{ENCODER_DIR}/model.pt"
ENCODER_HISTORY = f"{ENCODER_DIR}/history.parquet"

BUDGET_DIR = "results/budget/{zoo}/{encoder}/{point}"
BUDGET_FILES = files_in(BUDGET_DIR, *ENCODER_OUTPUTS)
BUDGET_MODEL = f"{BUDGET_DIR}/model.pt"
BUDGET_FIDELITY = f"{BUDGET_DIR}/fidelity.parquet"

MERGE_DIR = "results/merge/{zoo}"
PAIRS = f"{MERGE_DIR}/pairs.parquet"
ENDPOINTS = f"{MERGE_DIR}/{{method}}/endpoints.npy"
CURVES = f"{MERGE_DIR}/{{method}}/curves.parquet"
ORBIT = f"{MERGE_DIR}/orbit.parquet"
ORIGINALS = f"{MERGE_DIR}/originals.parquet"
MERGE_MANY = f"{MERGE_DIR}/merge_many.parquet"
MEDOID_RECORD = f"{MERGE_DIR}/medoid.json"
FIDELITY_TABLE = "results/fidelity/{zoo}/{name}.parquet"
"""The fidelity of an encoder's reconstructions (`name` the encoder) or of the controls (`name` CONTROLS)."""

PREDICT_DIR = "results/predict/{zoo}/{predictor}/seed-{seed}"
PREDICT_FILES = files_in(
    PREDICT_DIR, "predictions.parquet", "history.parquet", "summary.json"
)
PREDICTIONS = f"{PREDICT_DIR}/predictions.parquet"

FINETUNE_DIR = "results/finetune/{zoo}"
FINETUNE_OUTPUTS = ("params.npy", "networks.parquet", "summary.json")
"""What every method folder of `symzoo finetune` holds (an operator's adds history.parquet and model.pt)."""
FINETUNE_FILES = files_in(f"{FINETUNE_DIR}/{{finetune}}", *FINETUNE_OUTPUTS)
FINETUNE_SUMMARY = f"{FINETUNE_DIR}/{{folder}}/summary.json"
FINETUNE_TABLES = ["finetune.parquet", "finetune_targets.parquet", "finetune.md"]
"""What `symzoo finetune-report` writes into results/tables/ (and its figure `finetune` into results/figures/)."""

GENERATE_DIR = "results/generate/{zoo}"
REPRESENT_FILES = files_in(
    f"{GENERATE_DIR}/represent/{{representation}}", "params.npy", "summary.json"
)
REPRESENTED = f"{GENERATE_DIR}/represent/{{representation}}/params.npy"
GENERATE_FILES = files_in(
    f"{GENERATE_DIR}/{{generator}}", "samples.npy", "networks.parquet", "summary.json"
)
GENERATE_SUMMARY = f"{GENERATE_DIR}/{{generator}}/summary.json"
GENERATE_TABLES = [
    "generation.parquet",
    "generation_ensembles.parquet",
    "generation_targets.parquet",
    "generation.md",
]
"""What `symzoo generate-report` writes into results/tables/ (its figures: GENERATE_FIGURES)."""
GENERATE_FIGURES = ["generation_accuracy", "generation_novelty", "generation_bma"]

TABLES_DIR = "results/tables"
TABLE = f"{TABLES_DIR}/{{table}}"
METRICS = f"{TABLES_DIR}/{METRICS_DIR}/{{zoo}}.json"
FIGURES_DIR = "results/figures"
FIGURE = f"{FIGURES_DIR}/{{name}}.{{ext}}"
GENERALIZATION_TABLES = [
    "generalization.md",
    "generalization.parquet",
    "generalization_summary.parquet",
]
"""What `symzoo generalization` writes into results/tables/ (and its figure `generalization` into results/figures/)."""
BUDGET_TABLE = "budget.parquet"
"""What `symzoo budget-report` writes into results/tables/ (and its figure `budget` into results/figures/)."""

ZOO_LOG = "results/logs/zoo/{zoo}.log"
"""The log of whichever rule builds the zoo (smallcnnzoo, zoo_merge or inr_zoo)."""


def filled(pattern, **values):
    """`pattern` with some of its wildcards filled in, the others kept (a value may be another wildcard:
    `name="{encoder}"`)."""
    (path,) = expand(pattern, **values, allow_missing=True)
    return path


REPORTED = {
    TABLE.format(table="barriers.md"): ("barriers.rst", "Tables"),
    TABLE.format(table="fidelity.parquet"): ("fidelity_table.rst", "Tables"),
    TABLE.format(table="generalization.md"): ("generalization.rst", "Tables"),
    TABLE.format(table="finetune.md"): ("finetune.rst", "Tables"),
    FIGURE.format(name="finetune", ext="png"): ("finetune_figure.rst", "Figures"),
    TABLE.format(table="generation.md"): ("generation.rst", "Tables"),
    **{
        FIGURE.format(name=name, ext="png"): ("generation_figures.rst", "Figures")
        for name in GENERATE_FIGURES
    },
    FIGURE.format(name="generalization", ext="png"): (
        "generalization_figure.rst",
        "Figures",
    ),
    **{
        FIGURE.format(name=name, ext="png"): (f"{name}.rst", "Figures")
        for name in FIGURE_NAMES
    },
}
"""What `snakemake --report` shows, with its caption (in workflow/report/) and category: two tables, the
generalization table, and every figure as PNG."""


def with_captions(paths):
    """`paths` as a rule's outputs, those in REPORTED marked for `snakemake --report`."""
    return [
        captioned(path, *REPORTED[path]) if path in REPORTED else path for path in paths
    ]


def captioned(path, caption, category):
    """`path` in `snakemake --report`, with its caption (a file in workflow/report/) and category."""
    return report(path, caption=f"../report/{caption}", category=category)
