"""Autoencoder training: the functional KL loss, validation by fidelity, exact resume.

:func:`fit_autoencoder` trains an :class:`~symzoo.models.autoencoder.Autoencoder` on the train networks of a
zoo. For a batch of M networks theta and B training images x (``images_per_step`` of ``x_train``, drawn afresh
each step) the loss is :func:`symzoo.fit.loss.kl_loss` between the logits of theta and of its reconstruction
(the originals carry no gradient); for an INR zoo (SIRENs) it is :func:`symzoo.fit.loss.render_loss`, the MSE
between the images the reconstruction and the original render on the whole pixel grid (``images_per_step``
and ``temperature`` do not apply, and validation compares renders: see :mod:`symzoo.fit.fidelity`). AdamW
(``lr``, ``weight_decay``, ``amsgrad``), the learning rate warmed up linearly over ``warmup_steps`` optimizer
steps (step s, from 1, uses ``lr * min(1, s / warmup_steps)``) and then constant; gradient norm clipped to
``clip``; dropout in training only. Each epoch visits the training networks once in a fresh random order, in
batches of ``batch_size`` (the last may be smaller).

Validation (eval mode, every ``eval_every`` epochs and at the last one) on the val networks and ``val_images``
fixed images of ``x_val``: the fidelity measures of :mod:`symzoo.fit.fidelity` at temperature 1. The best
epoch has the lowest ``kl`` (``select="kl"``) or the lowest ``|acc_gap|`` (``select="acc_gap"``, the
reference's); training stops once ``patience`` epochs pass without a new best. The result adds the same
measures of the best model on the test networks and test images.

Resume: after every epoch the loop hands a state (model, optimizer, scheduler, every random state, the best
model, the history, the early-stopping counter) to ``save_state``; started again with that state as
``resume``, it continues after that epoch and ends, on the CPU, with exactly the weights of an uninterrupted run.
The loop reads and writes no file: the stage keeps the state with :mod:`symzoo.checkpoint`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor
from tqdm import tqdm

from symzoo.checkpoint import digest
from symzoo.data.images import ImageSet
from symzoo.data.zoo import Zoo
from symzoo.fit.fidelity import fidelity, log_probs
from symzoo.fit.loss import reconstruction_loss
from symzoo.fit.optim import adamw_with_warmup
from symzoo.models.autoencoder import Architecture, Autoencoder, build_autoencoder, reconstruct
from symzoo.nets.functional import batched_forward
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)

VALIDATION = ("kl", "agreement", "ident_recon", "ident_orig", "orig_acc", "recon_acc", "acc_gap", "kendall_tau")
"""The fidelity measures recorded per epoch (as ``val_<name>``)."""
HISTORY_SCHEMA: dict[str, type[pl.DataType]] = {
    "epoch": pl.Int64,
    "step": pl.Int64,
    "lr": pl.Float64,
    "train_kl": pl.Float64,
    **{f"val_{name}": pl.Float64 for name in VALIDATION},
}
"""One row per epoch. Wall-clock times go to the log, not here: the same config and seed give the same bytes."""
SELECT = ("kl", "acc_gap")
STATE_VERSION = 2


@dataclass(frozen=True)
class FitSettings:
    """Everything that determines an autoencoder run besides the zoo and the image set: the model's
    :class:`~symzoo.models.autoencoder.Architecture` and the optimisation keys of the config's encoder entry
    (``workflow/schemas/config.schema.json`` documents each and holds the defaults).
    ``train_networks`` (None: all) trains on a seeded subset of the train split (for budget curves).
    """

    arch: Architecture
    lr: float
    weight_decay: float
    amsgrad: bool
    warmup_steps: int
    clip: float
    batch_size: int
    epochs: int
    patience: int | None
    temperature: float
    images_per_step: int
    val_images: int
    seed: int
    eval_every: int
    select: str
    train_networks: int | None

    def __post_init__(self) -> None:
        if self.select not in SELECT:
            raise ValueError(f"fit settings: select must be one of {SELECT}, not {self.select!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FitSettings:
        """Settings from a validated encoder config entry (every key present, defaults filled in)."""
        keys = [f.name for f in fields(cls) if f.name != "arch"]
        return cls(arch=Architecture.from_options(options), **{k: options[k] for k in keys})

    def to_options(self) -> dict[str, Any]:
        """The flat config entry these settings come from (JSON-ready)."""
        return self.arch.to_dict() | {k: v for k, v in asdict(self).items() if k != "arch"}


def train_ids(zoo: Zoo, settings: FitSettings) -> dict[str, np.ndarray]:
    """The kept networks per split; the train split reduced to ``train_networks`` (a seeded subset, in order)."""
    ids = {split: zoo.ids(split) for split in ("train", "val", "test")}
    n = settings.train_networks
    if n is not None and n < len(ids["train"]):
        ids["train"] = np.sort(np.random.default_rng(settings.seed).choice(ids["train"], size=n, replace=False))
    return ids


def fingerprint(zoo: Zoo, ids: Mapping[str, np.ndarray], images: ImageSet, settings: FitSettings) -> dict[str, Any]:
    """What a saved state must share with this run to be resumed: settings, spec, networks and images."""
    parts = []
    for split in ("train", "val"):
        parts += [
            np.ascontiguousarray(ids[split], np.int64).tobytes(),
            np.ascontiguousarray(zoo.params[ids[split]]).tobytes(),
        ]
    parts += [np.ascontiguousarray(images.x_train).tobytes(), np.ascontiguousarray(images.x_val).tobytes()]
    return {"settings": settings.to_options(), "spec": zoo.spec.to_dict(), "sha256": digest(parts)}


def _fixed_images(images: ImageSet, split: str, n: int, seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``n`` images (all if fewer) of one split with their labels, chosen once by the seed."""
    x, y = (torch.from_numpy(a) for a in images.split(split))
    if n < len(x):
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        x, y = x[pick], y[pick]
    return x.to(device), y.to(device)


def _measured_on(
    zoo: Zoo, images: ImageSet, ids: np.ndarray, split: str, settings: FitSettings, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Fixed images of a split with their labels; for INRs the pixel grid and the networks' own images."""
    if zoo.spec.is_inr:
        from symzoo.zoo.inr import zoo_coordinates, zoo_targets

        return zoo_coordinates(zoo, device), zoo_targets(zoo, images, ids, device)
    return _fixed_images(images, split, settings.val_images, settings.seed, device)


class _Split:
    """The networks of one zoo split on the device, with fixed images and the originals' predictions."""

    def __init__(self, spec: NetSpec, thetas: Tensor, x: Tensor, y: Tensor) -> None:
        self.spec, self.thetas, self.x, self.y = spec, thetas, x, y
        self.logp = log_probs(spec, thetas, x)

    def measure(self, ae: Autoencoder, batch_size: int) -> dict[str, float]:
        recon = reconstruct(ae, self.thetas, batch_size)
        return fidelity(self.logp, log_probs(self.spec, recon, self.x), self.y)


def _score(metrics: Mapping[str, float], select: str) -> tuple[float, float]:
    """Lower is better: the selection criterion, then the KL to break ties."""
    return (abs(metrics["acc_gap"]) if select == "acc_gap" else metrics["kl"], metrics["kl"])


def _rng_state(sampler: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    state = {"sampler": sampler.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Tensor], sampler: torch.Generator, device: torch.device) -> None:
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _cpu_state_dict(ae: Autoencoder) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in ae.state_dict().items()}


@dataclass
class FitResult:
    """A finished run: the best model (and its epoch), the history (one row per epoch) and the summary."""

    model: Autoencoder
    best_epoch: int
    history: pl.DataFrame
    summary: dict[str, Any]


def fit_autoencoder(
    zoo: Zoo,
    images: ImageSet,
    ids: Mapping[str, np.ndarray],
    settings: FitSettings,
    device: torch.device,
    resume: Mapping[str, Any] | None = None,
    save_state: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train on the networks ``ids["train"]`` of ``zoo``, validate on ``ids["val"]``, test on ``ids["test"]``.

    ``save_state(state)`` receives the resume state after each epoch, ``on_epoch(row)`` that epoch's history row
    afterwards (an exception there stops the run as a kill would). The caller's random state is left untouched.
    """
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        return _fit(zoo, images, ids, settings, device, resume, save_state, on_epoch, progress)


def _fit(zoo, images, ids, settings, device, resume, save_state, on_epoch, progress) -> FitResult:
    spec = zoo.spec
    started = time.perf_counter()
    train = zoo.tensor(ids["train"], device)
    x_train = torch.from_numpy(images.x_train).to(device)
    val = _Split(spec, zoo.tensor(ids["val"], device), *_measured_on(zoo, images, ids["val"], "val", settings, device))

    torch.manual_seed(settings.seed)
    ae = build_autoencoder(spec, settings.arch, thetas_train=train.cpu()).to(device)
    opt, sched = adamw_with_warmup(
        ae.parameters(),
        settings.lr,
        settings.weight_decay,
        settings.amsgrad,
        settings.warmup_steps,
        settings.epochs * -(-len(train) // settings.batch_size),
    )
    sampler = torch.Generator().manual_seed(settings.seed)

    epoch, step, bad_epochs, stopped = 0, 0, 0, False
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "score": None, "metrics": None, "state_dict": None}
    if resume is not None:
        ae.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])  # after the scheduler exists: its constructor resets the lr
        sched.load_state_dict(resume["scheduler"])
        _set_rng_state(resume["rng"], sampler, device)
        epoch, step, bad_epochs, stopped = resume["epoch"], resume["step"], resume["bad_epochs"], resume["stopped"]
        history, best = list(resume["history"]), dict(resume["best"])
        log.info("resuming after epoch %d (step %d)", epoch, step)

    n_train = len(train)
    bar = tqdm(
        total=settings.epochs,
        initial=epoch,
        desc=f"autoencoder {settings.arch.kind}",
        unit="epoch",
        disable=None if progress else True,  # None: no bar when stderr is not a terminal (a log file)
    )
    while not stopped and epoch < settings.epochs:
        tick = time.perf_counter()
        epoch += 1
        ae.train()
        kl_sum = torch.zeros((), dtype=torch.float64, device=device)
        order = torch.randperm(n_train, generator=sampler)
        for s in range(0, n_train, settings.batch_size):
            thetas = train[order[s : s + settings.batch_size].to(device)]
            if spec.is_inr:
                x = val.x  # the whole pixel grid
            else:
                x = x_train[torch.randint(len(x_train), (settings.images_per_step,), generator=sampler).to(device)]
            with torch.no_grad():
                target = batched_forward(spec, thetas, x)
            loss = reconstruction_loss(spec, batched_forward(spec, ae(thetas), x), target, settings.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ae.parameters(), settings.clip)
            lr = float(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            step += 1
            kl_sum += loss.detach().double() * len(thetas)
        row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": lr, "train_kl": kl_sum.item() / n_train}
        if not math.isfinite(row["train_kl"]):
            raise FloatingPointError(
                f"autoencoder training diverged at epoch {epoch} (train KL {row['train_kl']}); "
                "lower lr or check the zoo"
            )
        row |= {f"val_{name}": None for name in VALIDATION}
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            metrics = val.measure(ae, settings.batch_size)
            row |= {f"val_{name}": metrics[name] for name in VALIDATION}
            score = _score(metrics, settings.select)
            if best["epoch"] is None or score < tuple(best["score"]):
                best = {"epoch": epoch, "score": score, "metrics": metrics, "state_dict": _cpu_state_dict(ae)}
            bad_epochs = epoch - best["epoch"]
            if settings.patience is not None and bad_epochs >= settings.patience and epoch < settings.epochs:
                stopped = True
        seconds = time.perf_counter() - tick
        history.append(row)
        if save_state is not None:
            save_state(
                {
                    "epoch": epoch,
                    "step": step,
                    "bad_epochs": bad_epochs,
                    "stopped": stopped,
                    "model": ae.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": _rng_state(sampler, device),
                    "best": best,
                    "history": history,
                }
            )
        log.info(
            "epoch %d/%d: step %d, lr %.3g, train KL %.5f, val KL %s, ident. %s / %s, acc %s -> %s, tau %s, %.1fs",
            epoch, settings.epochs, step, row["lr"], row["train_kl"], _fmt(row["val_kl"], ".5f"),
            _fmt(row["val_ident_recon"], ".3f"), _fmt(row["val_ident_orig"], ".3f"), _fmt(row["val_orig_acc"], ".3f"),
            _fmt(row["val_recon_acc"], ".3f"), _fmt(row["val_kendall_tau"], ".3f"), seconds,
        )  # fmt: skip
        bar.update(1)
        bar.set_postfix(train_kl=f"{row['train_kl']:.4f}", val_kl=_fmt(row["val_kl"], ".4f"), best=best["epoch"])
        if stopped:
            log.info(
                "early stopping after epoch %d: no better val %s for %d epochs", epoch, settings.select, bad_epochs
            )
        if on_epoch is not None:
            on_epoch(dict(row))
    bar.close()

    ae.load_state_dict(best["state_dict"])
    ae.eval()
    test_metrics = None
    if len(ids["test"]):
        x_test, y_test = _measured_on(zoo, images, ids["test"], "test", settings, device)
        test_metrics = _Split(spec, zoo.tensor(ids["test"], device), x_test, y_test).measure(ae, settings.batch_size)
    else:
        log.warning("zoo %s has no kept test networks: the summary has no test measures", zoo.root)
    summary = {
        "kind": settings.arch.kind,
        "settings": settings.to_options(),
        "best_epoch": best["epoch"],
        "epochs_run": epoch,
        "stopped_early": stopped,
        "steps": step,
        "val": best["metrics"],
        "test": test_metrics,
        "networks": {split: len(v) for split, v in ids.items()},
        "num_params": sum(p.numel() for p in ae.parameters()),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    seconds = time.perf_counter() - started
    log.info("best epoch %s: val %s; %.1f s this session", best["epoch"], best["metrics"], seconds)
    return FitResult(ae, best["epoch"], pl.DataFrame(history, schema=HISTORY_SCHEMA), summary)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
