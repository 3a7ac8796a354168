import json

DATASETS = list(config["datasets"])
ZOOS = list(config["zoos"])
DOWNLOADS = "results/downloads"


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",
    zoo="|".join(ZOOS) or "(?!)",


def options(section):
    """The config entry of a rule's wildcard, as JSON for `symzoo <stage> --options`.

    Used in `params`, so editing an entry re-runs exactly the jobs that depend on it.
    """
    key = {"datasets": "dataset", "zoos": "zoo"}[section]
    return lambda wildcards: json.dumps(config[section][wildcards[key]], sort_keys=True)


def zoo_files(zoo):
    return multiext(f"results/zoo/{zoo}/", "params.npy", "models.parquet", "arch.json")


def all_targets():
    return [
        *expand("results/data/{dataset}.npz", dataset=DATASETS),
        *[f for zoo in ZOOS for f in zoo_files(zoo)],
    ]
