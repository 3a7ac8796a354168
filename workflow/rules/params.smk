# What rules compute from a job's wildcards: the options and arguments of the stage commands (params) and the
# inputs that depend on the config (input functions).
import json
import math
import os

from symzoo.config import zoo_encoder, zoo_section
from symzoo.merge.methods import NEEDS_MEDOID, encoder_of


def as_json(value):
    """A param: `value` as JSON for `symzoo <stage> --options` (sorted keys: the same entry, the same string)."""
    return json.dumps(value, sort_keys=True)


def options(section):
    """The config entry of a rule's wildcard (or a whole section), as JSON for `symzoo <stage> --options`.

    Used in `params`, so editing an entry re-runs exactly the jobs that depend on it.
    """
    key = {"datasets": "dataset", "zoos": "zoo", "encoders": "encoder"}.get(section)
    if key is None:
        return as_json(config[section])
    return lambda wildcards: as_json(config[section][wildcards[key]])


def encoder_options(wildcards):
    """An encoder's options on its zoo (the zoo's own `encoders` overrides applied)."""
    return as_json(zoo_encoder(config, wildcards.zoo, wildcards.encoder))


def budget_options(wildcards):
    """An encoder's options with one budget axis set (`{point}` is `<axis>-<value>`); runs of a given length
    train without early stopping."""
    axis, value = wildcards.point.rsplit("-", 1)
    changed = {axis: int(value)} | ({"patience": None} if axis == "epochs" else {})
    return as_json(config["encoders"][wildcards.encoder] | changed)


def finetune_options(wildcards):
    """The finetune section as it applies to the zoo (its own `finetune` overrides)."""
    return as_json(zoo_section(config, wildcards.zoo, "finetune"))


def finetune_method_name(wildcards):
    """The `--method` of a fine-tuning job: its folder's name, or `sgd_<objective>` for the SGD runs."""
    return wildcards.get("finetune") or f"sgd_{wildcards.objective}"


def finetune_out(wildcards, output):
    """A param: the zoo's fine-tuning folder, where `symzoo finetune` writes its method's folder(s)."""
    return os.path.dirname(os.path.dirname(output[0]))


def generate_options(wildcards):
    """The generate section as it applies to the zoo (its own model overrides)."""
    return as_json(zoo_section(config, wildcards.zoo, "generate"))


def generate_represented(wildcards):
    """The representation a generative model trains on (the Gaussian control: the aligned one); none else."""
    models = config["generate"]["models"]
    if wildcards.generator == "gaussian":
        representation = "aligned"
    elif wildcards.generator in models:
        representation = models[wildcards.generator]["representation"]
    else:
        return []
    return REPRESENTED.format(zoo=wildcards.zoo, representation=representation)


def generate_summaries(wildcards):
    """The noise control matches the best model's accuracy: it reads every model's summary."""
    if wildcards.generator != "noise":
        return []
    return expand(
        GENERATE_SUMMARY, zoo=wildcards.zoo, generator=GENERATE_MODELS[wildcards.zoo]
    )


def generate_inputs(wildcards, input):
    """A param: `--represented PATH` and the noise control's `--summary NAME=PATH`, where the job has them."""
    args = f"--represented {input.represented}" if input.represented else ""
    if input.summaries:
        pairs = [
            f"{os.path.basename(os.path.dirname(path))}={path}"
            for path in input.summaries
        ]
        args += " --summary " + " ".join(pairs)
    return args


def predictor_options(wildcards):
    return as_json(config["predict"]["models"][wildcards.predictor])


def orbit_options(wildcards):
    """The merge section with the zoo's own orbit overrides (INR zoos: the paper's noisy-copies protocol)."""
    merge = config["merge"]
    own = config["zoos"][wildcards.zoo].get("orbit", {})
    return as_json(merge | {"orbit": merge["orbit"] | own})


def output_dir(wildcards, output):
    """A param: the directory of the rule's first output (stage commands take directories)."""
    return os.path.dirname(output[0])


def input_dir(name):
    """A param: the directory of the rule's input ``name``."""
    return lambda wildcards, input: os.path.dirname(input[name][0])


def model_option(name):
    """A param: `--model NAME=PATH` for the rule's input `model` (NAME: `name(wildcards)`, the method name
    `ae_<encoder>`), or nothing when it has none."""
    return lambda wildcards, input: (
        f"--model {name(wildcards)}={input.model}" if input.model else ""
    )


def named(label, pattern, **wildcards):
    """`LABEL=PATH` arguments (`symzoo tables`, ...) of every combination of `wildcards`, e.g.
    `zoo/method=results/merge/zoo/method/curves.parquet`."""
    return [
        f"{name}={path}"
        for name, path in zip(expand(label, **wildcards), expand(pattern, **wildcards))
    ]


def zoo_dataset(wildcards):
    """The image set of the zoo's `dataset`."""
    return DATASET.format(dataset=config["zoos"][wildcards.zoo]["dataset"])


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


def shard_networks(wildcards):
    """The first network of the shard and how many it trains."""
    entry = config["zoos"][wildcards.zoo]
    first = int(wildcards.shard) * entry["batch_models"]
    return first, min(entry["batch_models"], entry["num_models"] - first)


def shard_options(wildcards):
    """Only what changes a shard's networks: growing `num_models` adds shards and re-runs none."""
    entry = config["zoos"][wildcards.zoo]
    first, count = shard_networks(wildcards)
    shard = {key: entry[key] for key in SHARD_KEYS} | {"first": first, "count": count}
    return as_json(shard)


def shard_outputs(wildcards):
    """Every output of the zoo's shards (what zoo_merge merges)."""
    return [
        f
        for shard in shards(wildcards.zoo)
        for f in expand(SHARD_FILES, zoo=wildcards.zoo, shard=shard)
    ]


def shard_dirs(wildcards):
    return expand(SHARD_DIR, zoo=wildcards.zoo, shard=shards(wildcards.zoo))


def autoencoder_model(wildcards):
    """The model.pt an autoencoder method needs (nothing for the baselines)."""
    encoder = encoder_of(wildcards.method)
    return (
        []
        if encoder is None
        else ENCODER_MODEL.format(zoo=wildcards.zoo, encoder=encoder)
    )


def medoid_record(wildcards):
    """The medoid.json the medoid control and align_reference need (nothing for the other methods)."""
    return (
        MEDOID_RECORD.format(zoo=wildcards.zoo)
        if wildcards.method in NEEDS_MEDOID
        else []
    )


def probe_model(wildcards):
    """The model.pt a probe reads (nothing for the trained predictors)."""
    model = config["predict"]["models"][wildcards.predictor]
    if model["kind"] != "probe":
        return []
    return ENCODER_MODEL.format(zoo=wildcards.zoo, encoder=model["encoder"])
