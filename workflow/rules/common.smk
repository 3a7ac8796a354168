import json
import math
import os
from pathlib import Path

from symzoo.config import zoo_encoder
from symzoo.merge.methods import MEDOID, autoencoder_method, encoder_of
from symzoo.report import FIGURES as FIGURE_NAMES
from symzoo.report import FORMATS, TABLES

DATASETS = list(config["datasets"])
ZOOS = list(config["zoos"])
ENCODERS = list(config["encoders"])
METHODS = [
    *config["merge"]["methods"],
    MEDOID,
    *[autoencoder_method(encoder) for encoder in ENCODERS],
]
DOWNLOADS = "results/downloads"
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=FORMATS)
REPORTED = {
    "results/tables/barriers.md": "barriers.rst",
    "results/tables/fidelity.parquet": "fidelity_table.rst",
}
"""Tables in `snakemake --report` (with their captions in workflow/report/); the PNG figures are in it too."""


def zoos_from(source):
    return [name for name, zoo in config["zoos"].items() if zoo["source"] == source]


INR_ZOOS = zoos_from("inr")
CLASSIFIER_ZOOS = [zoo for zoo in ZOOS if zoo not in INR_ZOOS]
"""INR zoos (SIRENs) go through the same encoders, merging and report; generalization prediction (of test
accuracy) and the budget curves are for the classifier zoos."""


def orbit_options(wildcards):
    """The merge section with the zoo's own orbit overrides (INR zoos: the paper's noisy-copies protocol)."""
    merge = config["merge"]
    own = config["zoos"][wildcards.zoo].get("orbit", {})
    return json.dumps(merge | {"orbit": merge["orbit"] | own}, sort_keys=True)


def one_of(names):
    """A wildcard pattern matching exactly these names (nothing, if there are none)."""
    return "|".join(names) or "(?!)"


FIDELITY = [*ENCODERS, "controls"]


wildcard_constraints:
    dataset=one_of(DATASETS),
    zoo=one_of(ZOOS),
    shard=r"\d{4}",
    encoder=one_of(ENCODERS),
    point=r"(train_networks|hidden|epochs)-\d+",
    predictor=one_of(list(config["predict"]["models"])),
    seed=r"\d+",
    method=one_of(METHODS),


def options(section):
    """The config entry of a rule's wildcard (or a whole section), as JSON for `symzoo <stage> --options`.

    Used in `params`, so editing an entry re-runs exactly the jobs that depend on it.
    """
    key = {"datasets": "dataset", "zoos": "zoo", "encoders": "encoder"}.get(section)
    if key is None:
        return json.dumps(config[section], sort_keys=True)
    return lambda wildcards: json.dumps(config[section][wildcards[key]], sort_keys=True)


def output_dir(wildcards, output):
    """A param: the directory of the rule's first output (stage commands take directories)."""
    return os.path.dirname(output[0])


def input_dir(name):
    """A param: the directory of the rule's input ``name``."""
    return lambda wildcards, input: os.path.dirname(input[name][0])


def zoo_dataset(wildcards):
    return f"results/data/{config['zoos'][wildcards.zoo]['dataset']}.npz"


def zoo_files(zoo):
    return multiext(f"results/zoo/{zoo}/", "params.npy", "models.parquet", "arch.json")


# A generated zoo is trained in shards of `batch_models` networks, one job each.
SHARD_KEYS = (
    "arch",
    "batch_size",
    "checkpoints",
    "compile",
    "epochs",
    "sampling",
    "seed",
)


def shards(zoo):
    entry = config["zoos"][zoo]
    return [
        f"{i:04d}"
        for i in range(math.ceil(entry["num_models"] / entry["batch_models"]))
    ]


def shard_options(wildcards):
    """Only what changes a shard's networks: growing `num_models` adds shards and re-runs none."""
    entry = config["zoos"][wildcards.zoo]
    first = int(wildcards.shard) * entry["batch_models"]
    count = min(entry["batch_models"], entry["num_models"] - first)
    shard = {key: entry[key] for key in SHARD_KEYS} | {"first": first, "count": count}
    return json.dumps(shard, sort_keys=True)


def shard_files(zoo, shard):
    return multiext(
        f"results/zoo/{zoo}/shards/{shard}/", "params.npy", "models.parquet"
    )


def encoder_files(zoo, encoder):
    return multiext(
        f"results/encoders/{zoo}/{encoder}/",
        "model.pt",
        "history.parquet",
        "summary.json",
    )


def autoencoder_model(wildcards):
    """The model.pt an autoencoder method needs (nothing for the baselines)."""
    encoder = encoder_of(wildcards.method)
    return (
        []
        if encoder is None
        else f"results/encoders/{wildcards.zoo}/{encoder}/model.pt"
    )


def named(pattern, **wildcards):
    """`NAME=PATH` arguments of `symzoo tables`, e.g. `zoo/method=results/merge/zoo/method/curves.parquet`."""
    name, path = pattern
    return [
        f"{n}={p}" for n, p in zip(expand(name, **wildcards), expand(path, **wildcards))
    ]


STAGES = {
    "data": expand("results/data/{dataset}.npz", dataset=DATASETS),
    "zoos": [f for zoo in ZOOS for f in zoo_files(zoo)],
    "encoders": [
        f for zoo in ZOOS for enc in ENCODERS for f in encoder_files(zoo, enc)
    ],
    "merge": [
        *expand(
            "results/merge/{zoo}/{method}/curves.parquet", zoo=ZOOS, method=METHODS
        ),
        *expand("results/merge/{zoo}/orbit.parquet", zoo=ZOOS),
        *expand("results/fidelity/{zoo}/{name}.parquet", zoo=ZOOS, name=FIDELITY),
    ],
    "report": [
        *expand("results/tables/{table}", table=TABLES),
        *expand("results/tables/metrics/{zoo}.json", zoo=ZOOS),
        *FIGURES,
    ],
}
"""The targets of each stage group (`snakemake zoos`, ...; DVC's stages run these)."""


BUDGET_AXES = ("train_networks", "hidden", "epochs")
BUDGET = [f"{axis}-{value}" for axis in BUDGET_AXES for value in config["budget"][axis]]
"""Budget points (`snakemake budget`; not part of `all`): `<axis>-<value>`."""


BUDGET_ENCODERS = config["budget"]["encoders"] or ENCODERS


def budget_options(wildcards):
    """An encoder's options with one budget axis set (`{point}` is `<axis>-<value>`); runs of a given length
    train without early stopping."""
    axis, value = wildcards.point.rsplit("-", 1)
    changed = {axis: int(value)} | ({"patience": None} if axis == "epochs" else {})
    return json.dumps(config["encoders"][wildcards.encoder] | changed, sort_keys=True)


BUDGET_TARGETS = expand(
    "results/budget/{zoo}/{encoder}/{point}/fidelity.parquet",
    zoo=CLASSIFIER_ZOOS,
    encoder=BUDGET_ENCODERS,
    point=BUDGET,
)


# Resources each job asks for (SLURM through a profile; locally `--resources` may cap them). Where the work
# scales with the config, so does the request; the numbers are generous estimates, not measurements.
GPU = 0 if config["device"] == "cpu" else 1
"""GPU rules (zoo shards, encoders, interpolation) ask for one GPU unless the config runs on the CPU."""


def shard_runtime(wildcards):
    """Minutes: about 100 network-epochs a second on one GPU, with a large margin and start-up."""
    zoo = config["zoos"][wildcards.zoo]
    return 15 + math.ceil(zoo["batch_models"] * zoo["epochs"] / 600)


def shard_mem_mb(wildcards):
    """Parameters, gradients, two optimizer moments and every checkpoint of the shard, plus the images."""
    zoo = config["zoos"][wildcards.zoo]
    widths = [
        64,
        *zoo["arch"]["widths"],
        10,
    ]  # inputs of the MLP zoos; CNN layers are smaller
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    copies = 4 + len(zoo["checkpoints"])
    return 4000 + math.ceil(zoo["batch_models"] * params * 4 * copies / 2**20)


def encoder_runtime(wildcards):
    """Minutes: the configured epochs at a generous minute each, plus start-up."""
    return 30 + zoo_encoder(config, wildcards.zoo, wildcards.encoder)["epochs"]


localrules:
    pairs,
    tables,
    figures,
    budget_report,


PREDICTORS = list(config["predict"]["models"])
SEEDS = config["predict"]["seeds"]
PREDICTIONS = "results/predict/{zoo}/{predictor}/seed-{seed}/predictions.parquet"
PREDICT_TARGETS = expand(
    PREDICTIONS, zoo=CLASSIFIER_ZOOS, predictor=PREDICTORS, seed=SEEDS
)
STAGES["predict"] = PREDICT_TARGETS
if (
    PREDICTORS and CLASSIFIER_ZOOS
):  # the table and figure belong to the report group (DVC: one stage owns results/figures)
    STAGES["report"] += [
        "results/tables/generalization.md",
        "results/tables/generalization.parquet",
        "results/tables/generalization_summary.parquet",
        "results/figures/generalization.png",
        "results/figures/generalization.pdf",
    ]


def probe_model(wildcards):
    """The model.pt a probe reads (nothing for the trained predictors)."""
    model = config["predict"]["models"][wildcards.predictor]
    if model["kind"] != "probe":
        return []
    return f"results/encoders/{wildcards.zoo}/{model['encoder']}/model.pt"


def predict_runtime(wildcards):
    """Minutes: generous for the configured epochs."""
    return 30 + config["predict"]["models"][wildcards.predictor]["epochs"] // 2
