"""fit layer: autoencoder training on a tiny zoo — learning, outputs, exact kill-and-resume, early stopping, errors."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F

from symzoo import config
from symzoo.data.images import load_image_set, save_image_set
from symzoo.data.zoo import finalize_models, read_zoo, write_zoo
from symzoo.fit.autoencoder import HISTORY_SCHEMA, FitSettings
from symzoo.fit.fidelity import METRICS as FIDELITY
from symzoo.fit.fidelity import fidelity, log_probs
from symzoo.fit.loss import kl_loss
from symzoo.models.autoencoder import load_autoencoder, reconstruct
from symzoo.nets.functional import batched_forward
from symzoo.nets.spec import NetSpec
from symzoo.stages.encoder import CHECKPOINT, HISTORY, MODEL, SUMMARY
from symzoo.stages.encoder import run as fit_autoencoder
from tests.fixtures.tiny_zoo import images  # Gaussian 4x4 images labelled by a linear map

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = NetSpec("mlp", (1, 4, 4), (8,), 4, "tanh")  # 16-8-4, 172 parameters
N_NETS = 48
STEPS = 16


def settings(**keys) -> FitSettings:
    """Tiny settings; every key not given at its schema default (keys of the config's encoder entry)."""
    tiny = dict(
        kind="scalegmn", hidden=16, layers=1, latent=8, dropout=0.1, lr=3e-3, warmup_steps=5, batch_size=8,
        epochs=4, patience=None, images_per_step=32, val_images=64, seed=0, select="kl",
    )  # fmt: skip
    return FitSettings.from_options(config.entry("encoder", **(tiny | keys)))


TINY = settings()


def _networks(images: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """He-init networks, each trained for 0..STEPS full-batch gradient steps (a spread of accuracies)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.empty(N_NETS, SPEC.num_params)
    for t in SPEC.layout:
        fan_in = math.prod(t.shape[1:]) if len(t.shape) > 1 else 1
        theta[:, t.offset : t.stop] = torch.randn(N_NETS, t.size, generator=g) * math.sqrt(2 / fan_in)
    x, y = torch.from_numpy(images["x_train"]), torch.from_numpy(images["y_train"])
    steps = torch.arange(N_NETS) % (STEPS + 1)
    for k in range(STEPS):
        theta.requires_grad_(True)
        logits = batched_forward(SPEC, theta, x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(N_NETS), reduction="none").view(N_NETS, -1).mean(1)
        (grad,) = torch.autograd.grad(loss.sum(), theta)
        theta = (theta - 0.5 * grad * (steps > k)[:, None]).detach()
    return theta.numpy().astype(np.float32)


def _models(n: int, splits: list[str] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "model_id": np.arange(n, dtype=np.int64),
            "run_id": [f"run-{i:03d}" for i in range(n)],
            "step": np.full(n, 1, dtype=np.int64),
            "test_accuracy": np.full(n, 0.5),
        }
    )
    if splits is not None:
        frame = frame.with_columns(pl.Series("split", splits, dtype=pl.String), pl.lit(True).alias("kept"))
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(zoo dir, image set path) of a 48-network 16-8-4 tanh zoo, split 60/20/20."""
    root = tmp_path_factory.mktemp("fit")
    arrays = images()
    save_image_set(root / "blobs.npz", arrays)
    params, models = finalize_models(_networks(arrays), _models(N_NETS), pl.lit(True), (0.6, 0.2, 0.2))
    write_zoo(root / "zoo", SPEC, params, models, {"dataset": "blobs"})
    return root / "zoo", root / "blobs.npz"


def _fit(data, out: Path, fit: FitSettings = TINY, **kwargs):
    return fit_autoencoder(*data, out, fit, torch.device("cpu"), progress=False, **kwargs)


def test_kl_loss_is_batchmean_over_network_image_pairs():
    recon, orig = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    t = 0.6
    p = torch.softmax(orig / t, -1)
    expected = (p * (p.log() - torch.log_softmax(recon / t, -1))).sum(-1).mean() * t**2
    torch.testing.assert_close(kl_loss(recon, orig, t), expected)
    assert kl_loss(orig, orig, t).abs() < 1e-6


def test_short_run_learns_and_writes_outputs(data, tmp_path):
    out = tmp_path / "enc"
    summary = _fit(data, out)
    assert not (out / CHECKPOINT).exists()
    history = pl.read_parquet(out / HISTORY)
    assert history.columns == list(HISTORY_SCHEMA)
    assert history["epoch"].to_list() == list(range(1, TINY.optim.epochs + 1))
    assert history["val_kl"][-1] < history["val_kl"][0]
    assert history["step"][-1] == TINY.optim.epochs * math.ceil(summary["networks"]["train"] / TINY.optim.batch_size)

    on_disk = json.loads((out / SUMMARY).read_text())
    assert on_disk == summary
    assert on_disk["best_epoch"] == int(history["val_kl"].arg_min()) + 1
    for part in ("val", "test"):
        assert set(on_disk[part]) == {"n", *FIDELITY}
        assert on_disk[part]["kl"] > 0
        gap = on_disk[part]["recon_acc"] - on_disk[part]["orig_acc"]
        assert on_disk[part]["acc_gap"] == pytest.approx(gap)
    assert on_disk["val"]["kl"] == pytest.approx(history["val_kl"].min())
    assert on_disk["num_params"] > 0 and on_disk["kind"] == "scalegmn" and on_disk["device"] == "cpu"

    ae = load_autoencoder(out / MODEL, "cpu")
    assert not ae.training
    saved = torch.load(out / MODEL, weights_only=True)
    assert saved["epoch"] == on_disk["best_epoch"] and saved["settings"] == TINY.to_options()
    thetas = torch.randn(5, SPEC.num_params)
    recon = reconstruct(ae, thetas, batch_size=2)
    assert recon.shape == (5, SPEC.num_params)
    torch.testing.assert_close(recon, ae(thetas))


def test_a_short_run_identifies_its_networks_far_above_chance(data, tmp_path):
    """A decoder that collapsed (one network for every input) is at chance; a working one is not."""
    short = settings(
        message="bilinear", hidden=32, layers=2, latent=32, dropout=0.0, epochs=60, warmup_steps=10,
        images_per_step=128, temperature=1.0,
    )  # fmt: skip
    _fit(data, tmp_path / "ae", short)
    zoo, images = read_zoo(data[0]), load_image_set(data[1])
    thetas = zoo.tensor(zoo.ids("train"))
    x, y = (torch.from_numpy(a) for a in images.split("test"))
    recon = reconstruct(load_autoencoder(tmp_path / "ae" / MODEL), thetas)
    measured = fidelity(log_probs(SPEC, thetas, x), log_probs(SPEC, recon, x), y)
    assert measured["chance"] < 0.05
    assert measured["ident_recon"] > 0.3 and measured["ident_orig"] > 0.5  # chance: 1 / 23
    assert measured["diversity_recon"] > 0.3 * measured["diversity_orig"]


def test_kill_and_resume_gives_the_same_weights(data, tmp_path):
    """Killed after 2 of 5 epochs (during warm-up, with dropout) and restarted: bit-identical to one run."""
    ngnn = settings(kind="ngnn", epochs=5, warmup_steps=100)

    class Killed(Exception):
        pass

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise Killed

    _fit(data, tmp_path / "a", ngnn)
    with pytest.raises(Killed):
        _fit(data, tmp_path / "b", ngnn, on_epoch=kill_after_two)
    assert (tmp_path / "b" / CHECKPOINT).exists()
    assert not any((tmp_path / "b" / name).exists() for name in (MODEL, HISTORY, SUMMARY))
    resumed = []
    _fit(data, tmp_path / "b", ngnn, on_epoch=lambda row: resumed.append(row["epoch"]))
    assert resumed == [3, 4, 5]

    a, b = (torch.load(tmp_path / d / MODEL, weights_only=True) for d in ("a", "b"))
    assert a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    ha, hb = (pl.read_parquet(tmp_path / d / HISTORY) for d in ("a", "b"))
    assert ha.equals(hb, null_equal=True)


KILLED_RUN = """
import json, sys, torch
from pathlib import Path
from symzoo.fit.autoencoder import FitSettings
from symzoo.stages.encoder import run

torch.set_num_threads(1)
settings = FitSettings.from_options(json.loads(sys.argv[4]))
run(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), settings, torch.device("cpu"), progress=False)
"""


def test_sigkilled_process_resumes_to_the_same_weights(data, tmp_path):
    """A real SIGKILL of a training process (at whatever point it is once a checkpoint exists), then a restart."""
    long = settings(epochs=30, warmup_steps=50)
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-c",
        KILLED_RUN,
        str(data[0]),
        str(data[1]),
        str(out),
        json.dumps(long.to_options()),
    ]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / CHECKPOINT).exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / MODEL).exists()
    epochs = []
    _fit(data, out, long, on_epoch=lambda row: epochs.append(row["epoch"]))
    assert 0 < len(epochs) < long.optim.epochs  # it resumed, after the first epoch at least
    _fit(data, tmp_path / "whole", long)
    a, b = (torch.load(d / MODEL, weights_only=True)["state_dict"] for d in (tmp_path / "whole", out))
    assert all(torch.equal(tensor, b[name]) for name, tensor in a.items())
    assert sorted(p.name for p in out.iterdir()) == sorted([MODEL, HISTORY, SUMMARY])


def test_stale_checkpoint_of_other_settings_is_ignored(data, tmp_path):
    out = tmp_path / "enc"

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(data, out, settings(epochs=2), on_epoch=stop)
    epochs = []
    _fit(data, out, settings(epochs=1), on_epoch=lambda row: epochs.append(row["epoch"]))
    assert epochs == [1]


def test_early_stopping(data, tmp_path):
    """A run that cannot improve (learning rate 0: below the schema's bound, set on the typed settings) stops
    ``patience`` epochs after its first."""
    frozen = settings(epochs=20, patience=2)
    summary = _fit(data, tmp_path / "enc", dataclasses.replace(frozen, optim=dataclasses.replace(frozen.optim, lr=0.0)))
    history = pl.read_parquet(tmp_path / "enc" / HISTORY)
    assert summary["stopped_early"] and summary["best_epoch"] == 1
    assert history["epoch"].to_list() == [1, 2, 3]


def test_zoo_without_val_networks_is_an_error(data, tmp_path):
    _, images = data
    zoo = tmp_path / "trainonly"
    n = 6
    write_zoo(zoo, SPEC, np.zeros((n, SPEC.num_params), np.float32), _models(n, ["train"] * 4 + ["test"] * 2))
    with pytest.raises(ValueError, match=f"{zoo}.*'val'"):
        _fit((zoo, images), tmp_path / "enc")
    assert not (tmp_path / "enc").exists()


def test_image_set_that_does_not_fit_the_spec_is_an_error(data, tmp_path):
    zoo, _ = data
    arrays = {k: (np.zeros((4, 1, 5, 5), np.float32) if k[0] == "x" else np.zeros(4, np.int64)) for k in images()}
    save_image_set(tmp_path / "wrong.npz", arrays)
    with pytest.raises(ValueError, match="wrong.npz"):
        _fit((zoo, tmp_path / "wrong.npz"), tmp_path / "enc")


def test_bad_settings_are_errors_that_name_the_key():
    with pytest.raises(config.ConfigError, match="kind"):
        settings(kind="mlp")
    with pytest.raises(config.ConfigError, match="patience"):
        settings(patience=0)
    with pytest.raises(config.ConfigError, match="bogus"):
        settings(bogus=1)
