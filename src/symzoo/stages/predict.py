"""Stage ``predict``: one generalization predictor (one model, one seed) on one zoo.

Trains on the kept train networks (their ``test_accuracy`` is the target), selects the epoch by validation tau,
and writes into ``results/predict/{zoo}/{model}/seed-{seed}/``: ``predictions.parquet`` (per test network: its
accuracy, the prediction, and the predictions after a random permutation and after a random element of the whole
symmetry group of every network — the invariance check), ``history.parquet`` (per epoch; empty for a probe) and
``summary.json``. A ``probe`` fits a ridge regression on the frozen latents of a trained autoencoder.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.checkpoint import digest
from symzoo.data.zoo import read_zoo
from symzoo.fit.predict import PredictSettings, fit_predictor, predict, ridge_probe
from symzoo.metrics import regression_metrics
from symzoo.nets.symmetry import random_transform, transform
from symzoo.stages import common

if TYPE_CHECKING:  # the encoders (torch-geometric) load only for a probe
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)

PREDICTIONS, HISTORY, SUMMARY, CHECKPOINT = "predictions.parquet", "history.parquet", "summary.json", "checkpoint.pt"
HISTORY_SCHEMA = {"epoch": pl.Int64, "step": pl.Int64} | {
    c: pl.Float64 for c in ("lr", "train_mse", "val_tau", "val_r2", "val_l1")
}
TRANSFORMS = {"predicted_permuted": "permutation", "predicted_transformed": "both"}
"""The invariance check: predictions after a random permutation / permutation and scaling of every network."""


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "predictor", "predict.models.<name>")
    common.add_zoo(p, "zoo directory (trains on its train split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the batches and the transforms")
    common.add_named(p, "--model", "ae_NAME=PATH", "the autoencoder whose latent a probe reads")
    common.add_out(p, "results/predict/<zoo>/<name>/seed-<seed>")
    common.add_device(p, progress=True)


def main(args: argparse.Namespace) -> None:
    device = common.device(args)
    model = common.one_model(args, device)
    ae = model[1] if model else None
    run(args.zoo, args.options, args.seed, args.out, device, ae, not args.no_progress)


def run(
    zoo_dir: Path,
    options: dict[str, Any],
    seed: int,
    out_dir: Path,
    device: torch.device,
    ae: Autoencoder | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or, for a probe, fit on the latents of ``ae``) and write the outputs; returns the summary. A trained
    predictor keeps its resume state in ``out_dir/checkpoint.pt`` after every epoch (a killed job continues where
    it stopped; ``on_epoch`` is the loop's)."""
    out_dir = Path(out_dir)
    zoo = read_zoo(zoo_dir)
    target = zoo.models["test_accuracy"].to_numpy()
    ids = {split: zoo.ids(split) for split in ("train", "val", "test")}
    for split, rows in ids.items():
        if len(rows) < 2:
            raise ValueError(f"zoo {zoo_dir}: {len(rows)} kept {split!r} networks; a predictor needs at least 2")
    thetas = {split: zoo.tensor(rows) for split, rows in ids.items()}
    y = {split: torch.from_numpy(target[rows]).float() for split, rows in ids.items()}
    g = torch.Generator().manual_seed(seed)
    moved = {
        column: transform(zoo.spec, thetas["test"], random_transform(zoo.spec, kind, (len(ids["test"]),), g))
        for column, kind in TRANSFORMS.items()
    }
    history: list[dict[str, Any]] = []
    best_epoch = None
    if options["kind"] == "probe":
        if ae is None:
            raise ValueError(f"a probe needs the autoencoder of encoder {options['encoder']!r} (--model)")

        def latent(t: torch.Tensor) -> np.ndarray:
            with torch.no_grad():
                return torch.cat([ae.encode(b.to(device)).cpu() for b in t.split(256)]).numpy()

        probe = ridge_probe(latent(thetas["train"]), y["train"].numpy(), latent(thetas["val"]), y["val"].numpy())
        guess = {"predicted": probe.predict(latent(thetas["test"]))}
        guess |= {column: probe.predict(latent(t)) for column, t in moved.items()}
    else:
        settings = PredictSettings.from_options(options, seed)
        parts = [t.numpy().tobytes() for split in ("train", "val") for t in (thetas[split], y[split])]
        stamp = {"settings": options, "seed": seed, "spec": zoo.spec.to_dict(), "sha256": digest(parts)}
        resume, save_state = common.resumable(out_dir / CHECKPOINT, "predictor", stamp)
        trained = fit_predictor(
            zoo.spec,
            settings,
            (thetas["train"], y["train"]),
            (thetas["val"], y["val"]),
            device,
            progress,
            resume=resume,
            save_state=save_state,
            on_epoch=on_epoch,
        )
        model, history, best_epoch = trained.model, trained.history, trained.best_epoch
        guess = {"predicted": predict(model, thetas["test"])} | {c: predict(model, t) for c, t in moved.items()}
    frame = pl.DataFrame(
        {
            "model_id": ids["test"],
            "accuracy": target[ids["test"]],
            **{k: np.asarray(v, np.float64) for k, v in guess.items()},
        }
    )
    summary = {
        "zoo": str(zoo_dir),
        "kind": options["kind"],
        "seed": seed,
        "networks": {split: len(rows) for split, rows in ids.items()},
        "best_epoch": best_epoch,
        "test": regression_metrics(frame["predicted"].to_numpy(), frame["accuracy"].to_numpy()),
    }
    with atomic_path(out_dir / PREDICTIONS) as tmp:
        frame.write_parquet(tmp)
    with atomic_path(out_dir / HISTORY) as tmp:
        pl.DataFrame(history, schema=HISTORY_SCHEMA).write_parquet(tmp)
    with atomic_path(out_dir / SUMMARY) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str).replace("NaN", "null") + "\n")
    (out_dir / CHECKPOINT).unlink(missing_ok=True)
    log.info("%s seed %d: test %s", options["kind"], seed, summary["test"])
    return summary
