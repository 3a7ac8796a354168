"""Autoencoder training: the functional KL loss and validation by fidelity, through the one training loop.

:func:`fit_autoencoder` trains an :class:`~symzoo.models.autoencoder.Autoencoder` on the train networks of a
zoo with :func:`symzoo.fit.train.train` (optimiser, schedule, best epoch, patience and exact resume are the
loop's). For a batch of M networks theta and B training images x (``images_per_step`` of ``x_train``, drawn
afresh each step) the loss is :func:`symzoo.fit.loss.kl_loss` between the logits of theta and of its
reconstruction (the originals carry no gradient); for an INR zoo (SIRENs) it is
:func:`symzoo.fit.loss.render_loss`, the MSE between the images the reconstruction and the original render on
the whole pixel grid (``images_per_step`` and ``temperature`` do not apply, and validation compares renders: see
:mod:`symzoo.fit.fidelity`). Dropout in training only.

Validation (eval mode) on the val networks and ``val_images`` fixed images of ``x_val``: the fidelity measures
of :mod:`symzoo.fit.fidelity` at temperature 1. The best epoch has the lowest ``kl`` (``select="kl"``) or the
lowest ``|acc_gap|`` (``select="acc_gap"``, the reference's), ties broken by the KL. The result adds the same
measures of the best model on the test networks and test images.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import Tensor

from symzoo.checkpoint import digest
from symzoo.data.images import ImageSet
from symzoo.data.zoo import Zoo
from symzoo.fit.fidelity import fidelity, log_probs
from symzoo.fit.loss import reconstruction_loss
from symzoo.fit.train import OptimSettings, seeded, train
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
SELECT = {
    "kl": lambda m: (m["kl"], m["kl"]),
    "acc_gap": lambda m: (abs(m["acc_gap"]), m["kl"]),
}
"""Selection measures (lower is better), the KL breaking ties."""


@dataclass(frozen=True)
class FitSettings:
    """Everything that determines an autoencoder run besides the zoo and the image set: the model's
    :class:`~symzoo.models.autoencoder.Architecture`, its :class:`~symzoo.fit.train.OptimSettings` and the
    functional loss's keys of the config's encoder entry (``workflow/schemas/config.schema.json`` documents each
    and holds the defaults). ``train_networks`` (None: all) trains on a seeded subset of the train split (for
    budget curves).
    """

    arch: Architecture
    optim: OptimSettings
    temperature: float
    images_per_step: int
    val_images: int
    seed: int
    train_networks: int | None

    def __post_init__(self) -> None:
        if self.optim.select not in SELECT:
            raise ValueError(f"fit settings: select must be one of {tuple(SELECT)}, not {self.optim.select!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FitSettings:
        """Settings from a validated encoder config entry (every key present, defaults filled in)."""
        own = {f.name: options[f.name] for f in fields(cls) if f.name not in ("arch", "optim")}
        return cls(arch=Architecture.from_options(options), optim=OptimSettings.from_options(options), **own)

    def to_options(self) -> dict[str, Any]:
        """The flat config entry these settings come from (JSON-ready)."""
        own = {k: v for k, v in asdict(self).items() if k not in ("arch", "optim")}
        return self.arch.to_dict() | self.optim.to_options() | own


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

    ``resume``, ``save_state`` and ``on_epoch`` are the loop's (:func:`symzoo.fit.train.train`). The caller's
    random state is left untouched.
    """
    spec = zoo.spec
    started = time.perf_counter()
    train_thetas = zoo.tensor(ids["train"], device)
    x_train = torch.from_numpy(images.x_train).to(device)
    x_val, y_val = _measured_on(zoo, images, ids["val"], "val", settings, device)
    val = _Split(spec, zoo.tensor(ids["val"], device), x_val, y_val)
    batch_size = settings.optim.batch_size
    # an INR is always rendered on the whole pixel grid: its image is computed once, not every step
    train_renders = log_probs(spec, train_thetas, val.x) if spec.is_inr else None

    def loss(batch: Tensor, sampler: torch.Generator) -> Tensor:
        thetas = train_thetas[batch]
        if spec.is_inr:
            x, target = val.x, train_renders[batch]  # the whole pixel grid
        else:
            x = x_train[torch.randint(len(x_train), (settings.images_per_step,), generator=sampler).to(device)]
            with torch.no_grad():
                target = batched_forward(spec, thetas, x)
        return reconstruction_loss(spec, batched_forward(spec, ae(thetas), x), target, settings.temperature)

    with seeded(settings.seed, device):
        ae = build_autoencoder(spec, settings.arch, thetas_train=train_thetas.cpu()).to(device)
        run = train(
            ae,
            loss,
            lambda model: val.measure(model, batch_size),
            SELECT[settings.optim.select],
            len(train_thetas),
            settings.optim,
            settings.seed,
            measures=VALIDATION,
            train_column="train_kl",
            desc=f"autoencoder {settings.arch.kind}",
            resume=resume,
            save_state=save_state,
            on_epoch=on_epoch,
            progress=progress,
        )
        test_metrics = None
        if len(ids["test"]):
            x_test, y_test = _measured_on(zoo, images, ids["test"], "test", settings, device)
            test_metrics = _Split(spec, zoo.tensor(ids["test"], device), x_test, y_test).measure(ae, batch_size)
        else:
            log.warning("zoo %s has no kept test networks: the summary has no test measures", zoo.root)
    summary = {
        "kind": settings.arch.kind,
        "settings": settings.to_options(),
        "best_epoch": run.best_epoch,
        "epochs_run": run.epochs_run,
        "stopped_early": run.stopped_early,
        "steps": run.steps,
        "val": run.best,
        "test": test_metrics,
        "networks": {split: len(v) for split, v in ids.items()},
        "num_params": sum(p.numel() for p in ae.parameters()),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    log.info("autoencoder trained: %.1f s this session", time.perf_counter() - started)
    return FitResult(ae, run.best_epoch, pl.DataFrame(run.history, schema=HISTORY_SCHEMA), summary)
