# Resources each job asks for (SLURM through a profile; locally `--resources` may cap them), and which rules run
# on the submitting machine. Where the work scales with the config, so does the request; the numbers are
# generous estimates, not measurements.
import math

from symzoo.config import zoo_encoder, zoo_section

GPU = 0 if config["device"] == "cpu" else 1
"""GPU rules (zoo shards, encoders, interpolation) ask for one GPU unless the config runs on the CPU."""


def image_shape(dataset):
    """(C, H, W) and the number of classes of image set `dataset`, from its config entry: its file is built by a
    job of the DAG, so it is not there to read when the DAG is. Digits: 1 x 8 x 8; CIFAR-10-GS: 1 x 32 x 32, or
    `resize` on a side; 10 classes both."""
    entry = config["datasets"][dataset]
    if entry["source"] == "digits":
        return (1, 8, 8), 10
    if entry["source"] == "cifar10":
        side = entry.get("resize") or 32
        return (1, side, side), 10
    raise WorkflowError(
        f"datasets.{dataset}: no known image shape for source {entry['source']!r} (workflow/rules/resources.smk)"
    )


def shard_mem_mb(wildcards):
    """Megabytes: the library's own estimate of the shard's population (`population_bytes`, which `symzoo
    zoo-shard` checks a GPU's free memory against: parameters, gradients, optimizer moments, checkpoints and
    activations), plus 4 GB for the process and the image set."""
    # imported here: they load torch, which parsing the workflow otherwise does without (docs/design.md)
    from symzoo.stages.zoo_shard import spec_for, train_settings
    from symzoo.zoo.train import population_bytes

    zoo = config["zoos"][wildcards.zoo]
    spec = spec_for(zoo["arch"], *image_shape(zoo["dataset"]))
    _, networks = shard_networks(wildcards)
    return 4000 + math.ceil(
        population_bytes(spec, networks, train_settings(zoo)) / 2**20
    )


def shard_runtime(wildcards):
    """Minutes: about 100 network-epochs a second on one GPU, with a large margin and start-up."""
    zoo = config["zoos"][wildcards.zoo]
    return 15 + math.ceil(zoo["batch_models"] * zoo["epochs"] / 600)


def encoder_runtime(wildcards):
    """Minutes: the configured epochs at a generous minute each, plus start-up."""
    return 30 + zoo_encoder(config, wildcards.zoo, wildcards.encoder)["epochs"]


def predict_runtime(wildcards):
    """Minutes: generous for the configured epochs."""
    return 30 + config["predict"]["models"][wildcards.predictor]["epochs"] // 2


def finetune_runtime(wildcards):
    """Minutes: an operator's configured epochs at a generous minute each, plus start-up; 30 for the others."""
    method = FINETUNE_METHODS[wildcards.finetune]
    if method.kind != "operator":
        return 30
    return (
        30
        + zoo_section(config, wildcards.zoo, "finetune")["operators"][method.entry][
            "epochs"
        ]
    )


GPU_JOB = {"gpu": GPU, "mem_mb": 8000, "runtime": 60}
"""An hour and 8 GB, with a GPU (unless on the CPU): INR zoos, interpolation, orbit."""
ENCODER_JOB = {"gpu": GPU, "mem_mb": 16000, "runtime": encoder_runtime}
"""Training an autoencoder (an encoder, or a budget point's)."""
CPU_JOB = {"mem_mb": 8000, "runtime": 30}
"""Half an hour and 8 GB, no GPU: fidelity (an encoder's, the controls', a budget point's), zoo_merge."""
REPORT_JOB = {"mem_mb": 4000, "runtime": 10}
"""Ten minutes and 4 GB: tables and figures."""


localrules:
    pairs,
    tables,
    figures,
    budget_report,
