"""Generated zoos: shard jobs (deterministic, resumable after a kill) merged into the zoo format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from symzoo import checkpoint, config
from symzoo.data.images import SplitSettings, save_image_set
from symzoo.data.zoo import read_zoo
from symzoo.sources.digits import digits_image_set
from symzoo.stages import zoo_merge
from symzoo.stages.zoo_shard import state_path
from symzoo.zoo.state import CHECKPOINT_KIND, STATE_VERSION

ZOO = {
    "source": "generate",
    "dataset": "digits",
    "arch": {"kind": "mlp", "widths": [8, 6], "activation": "tanh"},
    "num_models": 8,
    "batch_models": 4,
    "epochs": 3,
    "checkpoints": [1, 3],
    "min_accuracy": 0.2,
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    save_image_set(path, digits_image_set(SplitSettings(fractions=(0.6, 0.2, 0.2), seed=0)))
    return path


def shard_options(zoo: dict, shard: int) -> dict:
    zoo = config.validate(zoo, "zoo_generate")
    keys = ("arch", "batch_size", "checkpoints", "epochs", "sampling", "seed")
    first = shard * zoo["batch_models"]
    return {k: zoo[k] for k in keys} | {"first": first, "count": min(zoo["batch_models"], zoo["num_models"] - first)}


def merge(zoo: dict, shards: list[Path], out: Path) -> Path:
    """The zoo-merge stage on a zoo entry, validated as the command validates it."""
    return zoo_merge.run(config.validate(zoo, "zoo_generate"), shards, out)


def symzoo(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "symzoo.cli", *args], stderr=subprocess.PIPE, text=True, **kwargs)


def run_shard(options: dict, data: Path, out: Path) -> str:
    proc = symzoo(
        "zoo-shard", "--options", json.dumps(options), "--data", str(data), "--out", str(out), "--device", "cpu"
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def test_shards_merge_into_a_filtered_split_zoo(digits, tmp_path):
    shards = [tmp_path / f"shards/{i:04d}" for i in range(2)]
    for i, shard in enumerate(shards):
        run_shard(shard_options(ZOO, i), digits, shard)
    merge(ZOO, shards, tmp_path / "zoo")
    zoo = read_zoo(tmp_path / "zoo")
    assert len(zoo) == 8 and zoo.spec.sizes == (64, 8, 6, 10)
    assert zoo.models["run_id"].to_list() == [f"run-{i:06d}" for i in range(8)]
    assert (zoo.models["step"] == 3).all()
    assert zoo.models["kept"].to_list() == (zoo.models["test_accuracy"] > 0.2).to_list()
    for column in ("optimizer", "learning_rate", "l2", "dropout", "init", "init_std", "train_fraction", "seed"):
        assert zoo.models[column].null_count() == 0, column
    assert {"train_loss", "val_accuracy", "test_loss"} <= set(zoo.models.columns)
    assert not state_path(shards[0]).exists()  # the training state is gone once the shard is written
    # the selected checkpoint's parameters are the shard's rows at that step
    step1 = merge({**ZOO, "step": 1}, shards, tmp_path / "zoo1")
    assert not np.array_equal(read_zoo(step1).params, zoo.params)


def test_a_classifier_zoo_trains_on_the_real_mnist_digits(tmp_path):
    """The mnist5k image set serves classifier zoos too: MLPs 784-8-10 learn the 28x28 digits far above chance."""
    from symzoo.data.images import SplitSettings
    from symzoo.sources.mnist5k import mnist5k_image_set

    data = tmp_path / "mnist5k.npz"
    save_image_set(data, mnist5k_image_set(SplitSettings(fractions=(0.6, 0.2, 0.2), seed=0)))
    zoo = ZOO | {"dataset": "mnist5k", "arch": {"kind": "mlp", "widths": [8], "activation": "tanh"}}
    zoo |= {"num_models": 4, "epochs": 2, "checkpoints": [2], "min_accuracy": 0.0}
    run_shard(shard_options(zoo, 0), data, tmp_path / "shard")
    trained = read_zoo(merge(zoo, [tmp_path / "shard"], tmp_path / "zoo"))
    assert trained.spec.sizes == (784, 8, 10) and len(trained) == 4
    assert trained.models["test_accuracy"].max() > 0.5, trained.models["test_accuracy"].to_list()  # chance: 0.1


@pytest.mark.slow  # three shard processes (about 30 s on two busy cores)
def test_same_config_and_seed_give_byte_identical_params(digits, tmp_path):
    options = shard_options(ZOO, 1)
    for name in ("a", "b"):
        run_shard(options, digits, tmp_path / name)
    run_shard(options | {"seed": 1}, digits, tmp_path / "c")
    a, b, c = ((tmp_path / n / "params.npy").read_bytes() for n in "abc")
    assert a == b and a != c


@pytest.mark.slow  # a 30-epoch shard killed and resumed, and one trained through (about 50 s)
def test_a_killed_shard_leaves_no_output_and_its_rerun_resumes(digits, tmp_path):
    options = shard_options(ZOO | {"epochs": 30, "checkpoints": [10, 30]}, 0)
    out = tmp_path / "killed"
    proc = symzoo(
        "zoo-shard",
        "--options",
        json.dumps(options),
        "--data",
        str(digits),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not state_path(out).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the shard finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    assert state_path(out).exists()
    log = run_shard(options, digits, out)
    assert "resuming" in log
    run_shard(options, digits, tmp_path / "whole")
    assert (out / "params.npy").read_bytes() == (tmp_path / "whole/params.npy").read_bytes()


def test_a_stale_state_is_removed_and_the_shard_trains_afresh(digits, tmp_path):
    options = shard_options(ZOO | {"epochs": 2, "checkpoints": [2]}, 0)
    run_shard(options, digits, tmp_path / "clean")
    out = tmp_path / "stale"
    checkpoint.save(state_path(out), CHECKPOINT_KIND, STATE_VERSION, {"spec": "of another zoo"}, {"epoch": 1})
    log = run_shard(options, digits, out)
    assert "written for other" in log and "starting afresh" in log and "resuming" not in log
    assert not state_path(out).exists()
    assert (out / "params.npy").read_bytes() == (tmp_path / "clean/params.npy").read_bytes()


def test_bad_shard_options_are_named(digits, tmp_path):
    proc = symzoo(
        "zoo-shard",
        "--options",
        json.dumps(shard_options(ZOO, 0) | {"epocs": 2}),
        "--data",
        str(digits),
        "--out",
        str(tmp_path / "s"),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "epocs" in err
    assert not (tmp_path / "s").exists()
