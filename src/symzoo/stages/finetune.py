"""Stage ``finetune``: one single-shot fine-tuning method (or baseline, or control) on a classifier zoo.

Every method turns the zoo's kept test networks into tuned networks and is measured on the test images
(:func:`symzoo.fit.finetune.measures`). ``--method`` (:func:`symzoo.fit.finetune_methods.methods`):

- ``initial``: the test networks themselves (the control every other row is compared with);
- ``best_train``: every test network replaced by the train network with the highest validation accuracy (a high
  mean accuracy that says nothing about fine-tuning: its tuned networks are far from their inputs);
- ``sgd_<objective>``: plain SGD on the training images, the test networks as one vmapped population; one run,
  a folder per budget (``sgd_<objective>-<epochs>``); ``sgd.alone`` networks are also fine-tuned one at a time with
  ``torch.optim`` for the smallest budget (the time of one network alone, extrapolated linearly to the others, and
  a check that the population computes the same networks);
- ``<operator>_<objective>``: the operator ``finetune.operators.<operator>`` trained on the train networks (resuming
  from ``checkpoint.pt`` after a kill), then applied to every test network in one forward pass.

Each folder, ``results/finetune/{zoo}/<method>/``: ``params.npy`` (float32 (N_test, P), the tuned networks in the
zoo's layout, rows in the order of the zoo's kept test networks in ``models.parquet``), ``networks.parquet`` (per
test network: ``model_id`` and the measures), ``summary.json`` (the method, its settings, seconds per network, the
images one epoch sees, the mean measures) and, for an operator, ``history.parquet`` and ``model.pt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy.stats import spearmanr

from symzoo.atomic import atomic_path
from symzoo.checkpoint import digest
from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.networks import write_networks, write_summary
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.fit import finetune as ft
from symzoo.fit.finetune_methods import methods
from symzoo.nets.functional import evaluate
from symzoo.stages import common

log = logging.getLogger(__name__)

PARAMS, NETWORKS, SUMMARY, HISTORY, MODEL, CHECKPOINT = (
    "params.npy", "networks.parquet", "summary.json", "history.parquet", "model.pt", "checkpoint.pt",
)  # fmt: skip
IMAGE_SPLITS = {"train": "x_train", "val": "x_val", "test": "x_test"}


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "finetune", "the finetune section (with the zoo's own finetune overrides)")
    common.add_zoo(p, "classifier zoo directory (results/zoo/<name>)")
    common.add_data(p)
    p.add_argument("--method", required=True, help="initial, best_train, sgd_<objective> or <operator>_<objective>")
    common.add_out(p, "the zoo's fine-tuning folder (results/finetune/<zoo>); the method writes its folders there")
    common.add_device(p, progress=True)


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.data, args.options, args.method, args.out, common.device(args), not args.no_progress)


def run(
    zoo_dir: Path,
    data_path: Path,
    options: dict[str, Any],
    method: str,
    out_dir: Path,
    device: torch.device,
    progress: bool = True,
    on_epoch=None,
) -> dict[str, dict[str, Any]]:
    """Run ``method`` and write its folder(s) in ``out_dir``; returns each folder's summary."""
    known = methods(options)
    if method not in known:
        raise ValueError(f"--method {method!r}: not a method of this finetune section; one of {sorted(known)}")
    chosen = known[method]
    zoo, images = read_zoo(zoo_dir), load_image_set(data_path)
    if zoo.spec.is_inr:
        raise ValueError(f"zoo {zoo_dir}: fine-tuning is for classifier zoos, not INR zoos")
    ids = {split: zoo.ids(split) for split in ("train", "val", "test")}
    common.check_inputs(zoo, images, ids, Path(zoo_dir), Path(data_path))
    if len(ids["test"]) == 0:
        raise ValueError(f"zoo {zoo_dir}: no kept test networks to fine-tune ({Path(zoo_dir) / 'models.parquet'})")
    l1 = options["l1"] if chosen.objective == "l1" else 0.0
    test = zoo.tensor(ids["test"], device)
    base = {"zoo": str(zoo_dir), "method": method, "kind": chosen.kind, "objective": chosen.objective, "l1": l1,
            "networks": len(ids["test"]), "device": str(device)}  # fmt: skip
    if chosen.kind == "control":
        tuned, seconds = _control(chosen.entry, zoo, images, ids, device)
        results = {method: (tuned, base | {"seconds_per_network": seconds}, {})}
    elif chosen.kind == "sgd":
        results = _sgd(zoo, images, test, options["sgd"], l1, base, device, progress)
    else:
        settings = ft.FinetuneSettings.from_options(options["operators"][chosen.entry], l1)
        results = {method: _operator(zoo, images, ids, settings, base, Path(out_dir) / method, device, progress,
                                     on_epoch)}  # fmt: skip
    common.refuse_nonfinite({name: tuned for name, (tuned, _, _) in results.items()}, "tuned networks")
    x, y = (torch.from_numpy(a).to(device) for a in images.split("test"))
    summaries = {}
    for name, (tuned, summary, files) in results.items():
        frame = ft.measures(zoo.spec, test, tuned.to(device), x, y, l1)
        summary |= {"test": _means(frame), "test_images": len(x)}
        folder = Path(out_dir) / name
        for file, write in files.items():
            write(folder / file)
        write_networks(folder / PARAMS, tuned)
        common.write_table(pl.DataFrame({"model_id": ids["test"]}).hstack(frame), folder / NETWORKS)
        write_summary(folder / SUMMARY, summary)
        (folder / CHECKPOINT).unlink(missing_ok=True)
        log.info("%s: test accuracy %.4f (initial %.4f), %.3g s per network", name, summary["test"]["accuracy"],
                 summary["test"]["initial_accuracy"], summary["seconds_per_network"])  # fmt: skip
        summaries[name] = summary
    return summaries


def _means(frame: pl.DataFrame) -> dict[str, float]:
    """The mean of every measure, the best accuracy, and Spearman's rho of the initial and tuned accuracies."""
    means = {name: float(frame[name].mean()) for name in frame.columns}
    varies = len(frame) > 1 and frame["accuracy"].n_unique() > 1 and frame["initial_accuracy"].n_unique() > 1
    rho = spearmanr(frame["initial_accuracy"], frame["accuracy"]).statistic if varies else float("nan")
    return means | {"max_accuracy": float(frame["accuracy"].max()), "spearman": float(rho)}


def _control(
    name: str, zoo: Zoo, images: ImageSet, ids: dict[str, np.ndarray], device: torch.device
) -> tuple[torch.Tensor, float]:
    """The control's tuned networks and seconds per network (0: nothing is computed per network)."""
    test = zoo.tensor(ids["test"], device)
    if name == "initial":
        return test.clone(), 0.0
    train = zoo.tensor(ids["train"], device)
    x, y = (torch.from_numpy(a).to(device) for a in images.split("val"))
    _, accuracy = evaluate(zoo.spec, train, x, y)
    best = int(accuracy.argmax())
    log.info("best train network: model %d, validation accuracy %.4f", ids["train"][best], accuracy[best])
    return train[best].expand_as(test).clone(), 0.0


def _data(images: ImageSet, device: torch.device) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value).to(device) for key, value in images.arrays().items()}


def _sgd(
    zoo: Zoo,
    images: ImageSet,
    test: torch.Tensor,
    options: dict[str, Any],
    l1: float,
    base: dict[str, Any],
    device: torch.device,
    progress: bool,
) -> dict[str, tuple[torch.Tensor, dict[str, Any], dict]]:
    """Every budget's tuned networks and summary: the population's, and beside it the networks fine-tuned alone.

    One network alone is timed over the smallest budget and its seconds extrapolated linearly to the others (as the
    paper does from a 30-epoch run: the cost of an epoch does not change); at that budget the networks fine-tuned
    alone are checked against the population's."""
    settings = ft.SGDSettings.from_options(options, l1, options["seed"])
    data = _data(images, device)
    tuned, seconds = ft.sgd_population(zoo.spec, test, data, settings, device, progress)
    first = settings.epochs[0]
    short = dataclasses.replace(settings, epochs=(first,))
    alone = [ft.sgd_alone(zoo.spec, test[i], data, short, i, device) for i in range(min(settings.alone, len(test)))]
    per_epoch = float(np.mean([s[first] for _, s in alone])) / first if alone else None
    diff = max((float((net[first] - tuned[first][i]).abs().max()) for i, (net, _) in enumerate(alone)), default=None)
    if diff is not None:
        log.info("%d networks fine-tuned alone with torch.optim for %d epochs match the population to %.2g",
                 len(alone), first, diff)  # fmt: skip
    steps = len(data["x_train"]) // settings.batch_size
    out = {}
    for epoch in settings.epochs:
        name = f"{base['method']}-{epoch}"
        summary = base | {
            "method": name,
            "epochs": epoch,
            "lr": settings.lr,
            "batch_size": settings.batch_size,
            "images_per_epoch": steps * settings.batch_size,
            "seconds_per_network": seconds[epoch] / len(test),
            "seconds_per_network_alone": None if per_epoch is None else per_epoch * epoch,
            "alone_networks": len(alone),
            "alone_epochs_timed": first,
            "alone_max_abs_diff": diff,
        }
        out[name] = (tuned[epoch], summary, {})
    return out


def _operator(
    zoo: Zoo,
    images: ImageSet,
    ids: dict[str, np.ndarray],
    settings: ft.FinetuneSettings,
    base: dict[str, Any],
    folder: Path,
    device: torch.device,
    progress: bool,
    on_epoch,
) -> tuple[torch.Tensor, dict[str, Any], dict[str, Callable[[Path], None]]]:
    """Train the operator (resumable) and apply it to the test networks: the tuned networks, the summary, and the
    writers of ``model.pt`` and ``history.parquet``."""
    from symzoo.models.saved import save_model

    thetas = {split: zoo.tensor(ids[split]) for split in ids}
    train_images = common.images(images, "train", len(images.x_train), 0, device)
    val_images = common.images(images, "val", settings.val_images, settings.seed, device)
    parts = [np.ascontiguousarray(zoo.params[ids[s]]).tobytes() for s in ("train", "val")]
    parts += [images.x_train.tobytes(), images.x_val.tobytes()]
    stamp = {"settings": settings.to_options(), "spec": zoo.spec.to_dict(), "sha256": digest(parts)}
    folder.mkdir(parents=True, exist_ok=True)
    resume, save_state = common.resumable(folder / CHECKPOINT, "finetuner", stamp)
    trained, train_seconds = ft.timed(
        lambda: ft.fit_finetuner(
            zoo.spec, settings, thetas["train"], thetas["val"], train_images, val_images, device, progress,
            resume=resume, save_state=save_state, on_epoch=on_epoch,
        ),
        device,
    )  # fmt: skip
    test = thetas["test"].to(device)
    ft.apply(trained.model, test[:2])  # warm-up: the first call pays for allocations and caches
    tuned, seconds = ft.timed(lambda: ft.apply(trained.model, test), device)
    state_dict = {k: v.detach().to("cpu") for k, v in trained.model.state_dict().items()}

    def write_model(path: Path) -> None:
        with atomic_path(path) as tmp:
            save_model(tmp, trained.model, state_dict, settings=settings.to_options(), epoch=trained.best_epoch)

    history = pl.DataFrame(trained.history, schema=ft.HISTORY_SCHEMA)
    files = {MODEL: write_model, HISTORY: lambda path: common.write_table(history, path)}
    summary = base | {
        "operator": settings.arch.kind,
        "settings": settings.to_options(),
        "seconds_per_network": seconds / len(test),
        "train_seconds": train_seconds,
        "train_networks": len(ids["train"]),
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.epochs_run,
        "steps": trained.steps,
        "validation": trained.best,
        "gamma": trained.model.gamma.detach().cpu().tolist(),
    }
    return tuned, summary, files
