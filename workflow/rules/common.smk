import json
import math

DATASETS = list(config["datasets"])
ZOOS = list(config["zoos"])
DOWNLOADS = "results/downloads"


def zoos_from(source):
    return [name for name, zoo in config["zoos"].items() if zoo["source"] == source]


def one_of(names):
    """A wildcard pattern matching exactly these names (nothing, if there are none)."""
    return "|".join(names) or "(?!)"


wildcard_constraints:
    dataset=one_of(DATASETS),
    zoo=one_of(ZOOS),
    shard=r"\d{4}",


def options(section):
    """The config entry of a rule's wildcard, as JSON for `symzoo <stage> --options`.

    Used in `params`, so editing an entry re-runs exactly the jobs that depend on it.
    """
    key = {"datasets": "dataset", "zoos": "zoo"}[section]
    return lambda wildcards: json.dumps(config[section][wildcards[key]], sort_keys=True)


def zoo_dataset(wildcards):
    return f"results/data/{config['zoos'][wildcards.zoo]['dataset']}.npz"


def zoo_files(zoo):
    return multiext(f"results/zoo/{zoo}/", "params.npy", "models.parquet", "arch.json")


# A generated zoo is trained in shards of `batch_models` networks, one job each.
SHARD_KEYS = ("arch", "batch_size", "checkpoints", "epochs", "sampling", "seed")


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


def all_targets():
    return [
        *expand("results/data/{dataset}.npz", dataset=DATASETS),
        *[f for zoo in ZOOS for f in zoo_files(zoo)],
    ]
