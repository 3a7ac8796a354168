"""Autoencoder training: functional KL loss, validation by reconstruction quality, exact checkpoint/resume.

:func:`fit_autoencoder` trains an :class:`~symzoo.models.autoencoder.Autoencoder` on the kept ``train`` networks
of a zoo and writes ``model.pt`` (the best epoch's weights), ``history.parquet`` (one row per epoch) and
``summary.json`` into ``out_dir`` (``results/encoders/{zoo}/{encoder}/``).

Loss (the reference code's functional loss). For a batch of M networks theta and a batch of B training images
x (the image set's ``x_train``, ``images_per_step`` of them drawn afresh each step),

    loss = T^2 * KL(softmax(f_theta(x) / T) || softmax(f_recon(x) / T)) / (M * B)

summed over the M * B (network, image) pairs: ``F.kl_div(log_softmax(recon / T), log_softmax(orig / T),
log_target=True, reduction="batchmean") * T**2`` on logits flattened to (M * B, classes), so the ``batchmean``
denominator is M * B, the number of (network, image) pairs (not M). Logits come from
:func:`symzoo.nets.functional.batched_forward`; the original logits carry no gradient.

Optimisation: AdamW (``lr``, ``weight_decay``), learning rate warmed up linearly over ``warmup_steps``
optimizer steps (step s, counted from 1, uses ``lr * min(1, s / warmup_steps)``) and then constant; gradient
norm clipped to ``clip``; dropout active in training only. Each epoch visits the training networks once in a
fresh random order, in batches of ``batch_size`` (the last batch may be smaller).

Validation (eval mode, every ``eval_every`` epochs and at the last one) on the kept ``val`` networks and
``val_images`` fixed images of ``x_val``: the fidelity measures of :mod:`symzoo.fit.fidelity` at temperature 1
(``val_kl`` = KL(orig || recon), agreement, identifiability in both directions, accuracies on all of
``x_val`` / ``y_val``, ``acc_gap`` = recon - orig, Kendall's tau). The best epoch is the one with the lowest
``val_kl`` (``select="kl"``) or the lowest ``|acc_gap|`` (``select="acc_gap"``, the reference's); training stops
early once ``patience`` epochs pass without a new best. The summary adds the same measures for the best model on
the ``test`` networks and the image set's test images.

History (``history.parquet``, one row per epoch): ``epoch`` (from 1), ``step`` (optimizer steps so far), ``lr``
(of the epoch's last step), ``train_kl`` (the training loss averaged over the epoch's networks, dropout on),
the validation measures (null in epochs without validation) and ``seconds`` (the epoch's wall time,
validation included).

Resume: after every epoch ``checkpoint.pt`` (atomic) holds the model, optimizer, scheduler, every random state
(the explicit sampling generator, torch's CPU generator that drives dropout, CUDA's when used), the best state,
the history and the early-stopping counter. A run killed at any point and started again resumes from the last
finished epoch and ends, on the CPU, with exactly the weights of an uninterrupted run. The outputs are written
last, each atomically; ``checkpoint.pt`` goes once they are all there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from symzoo.atomic import atomic_path
from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.device import CHOICES, resolve
from symzoo.fit.fidelity import fidelity, log_probs
from symzoo.models.autoencoder import KINDS, Autoencoder, build_autoencoder
from symzoo.nets.functional import batched_forward
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)

MODEL, HISTORY, SUMMARY, CHECKPOINT = "model.pt", "history.parquet", "summary.json", "checkpoint.pt"
CHECKPOINT_VERSION = 1
VALIDATION = ("kl", "agreement", "ident_recon", "ident_orig", "orig_acc", "recon_acc", "acc_gap", "kendall_tau")
"""The fidelity measures recorded per epoch (as ``val_<name>``)."""
HISTORY_SCHEMA: dict[str, type[pl.DataType]] = {
    "epoch": pl.Int64,
    "step": pl.Int64,
    "lr": pl.Float64,
    "train_kl": pl.Float64,
    **{f"val_{name}": pl.Float64 for name in VALIDATION},
    "seconds": pl.Float64,
}
SELECT = ("kl", "acc_gap")


@dataclass(frozen=True)
class FitSettings:
    """Everything that determines an autoencoder run (with the zoo and the image set).

    Model: ``kind`` (``ngnn``, ``scalegmn``, ``scalegmn_broken``), ``hidden``, ``layers``, ``latent``,
    ``dropout``, ``message`` / ``readout`` / ``message_passing`` and the decoder's ``decoder_widths`` /
    ``decoder_output`` (see :func:`~symzoo.models.autoencoder.build_autoencoder`). Optimisation: AdamW ``lr`` /
    ``weight_decay`` (``amsgrad``), linear warm-up over ``warmup_steps`` steps then constant, gradient-norm
    ``clip``, ``batch_size`` networks per step, at most ``epochs`` epochs, early stopping after ``patience``
    epochs without a better validation score (``select``; None: never). Loss: softmax ``temperature``;
    ``images_per_step`` training images per step. Data: ``train_networks`` (None: all) of the train split,
    a seeded subset (for budget curves). Validation: ``val_images`` fixed images of ``x_val`` (and of ``x_test``
    for the test metrics), every ``eval_every`` epochs. ``seed`` fixes the initialisation, the network order,
    the image batches and dropout.
    """

    kind: str = "scalegmn"
    hidden: int = 256
    layers: int = 4
    latent: int = 256
    dropout: float = 0.2
    message: str = "mlp"
    readout: str = "outputs"
    message_passing: str = "dense"
    decoder_widths: tuple[int, ...] = (2, 4)
    decoder_output: str = "raw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    amsgrad: bool = False
    warmup_steps: int = 1000
    clip: float = 5.0
    batch_size: int = 64
    epochs: int = 300
    patience: int | None = 15
    temperature: float = 0.6
    images_per_step: int = 128
    val_images: int = 512
    seed: int = 0
    eval_every: int = 1
    select: str = "acc_gap"
    train_networks: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_widths", tuple(self.decoder_widths))
        if self.select not in SELECT:
            raise ValueError(f"fit settings: select must be one of {SELECT}, not {self.select!r}")
        if self.kind not in KINDS:
            raise ValueError(f"fit settings: kind must be one of {KINDS}, not {self.kind!r}")
        positive = ("hidden", "layers", "latent", "batch_size", "epochs", "images_per_step", "val_images", "eval_every")
        if self.train_networks is not None and self.train_networks < 2:
            raise ValueError(f"fit settings: train_networks must be >= 2 or None, not {self.train_networks!r}")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"fit settings: {name} must be a positive integer, not {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"fit settings: dropout must be in [0, 1), not {self.dropout!r}")
        if not self.temperature > 0:
            raise ValueError(f"fit settings: temperature must be > 0, not {self.temperature!r}")
        for name in ("lr", "weight_decay", "warmup_steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"fit settings: {name} must be >= 0, not {getattr(self, name)!r}")
        if not self.clip > 0:
            raise ValueError(f"fit settings: clip must be > 0, not {self.clip!r}")
        if self.patience is not None and (isinstance(self.patience, bool) or self.patience < 1):
            raise ValueError(f"fit settings: patience must be a positive integer or None, not {self.patience!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FitSettings:
        """Settings from a mapping (e.g. a config section); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"fit settings: unknown key(s) {', '.join(unknown)}; expected some of {sorted(known)}")
        return cls(**values)


# --------------------------------------------------------------------------------------------------
# loss and metrics


def kl_loss(recon_logits: Tensor, orig_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(softmax(orig / T) || softmax(recon / T)), averaged over all (network, image) pairs.

    Logits (M, B, classes) are flattened to (M * B, classes): ``batchmean`` divides by M * B.
    """
    t = temperature
    recon = F.log_softmax(recon_logits.flatten(0, -2) / t, dim=-1)
    orig = F.log_softmax(orig_logits.flatten(0, -2) / t, dim=-1)
    return F.kl_div(recon, orig, log_target=True, reduction="batchmean") * t**2


@torch.no_grad()
def reconstruct(ae: Autoencoder, thetas: Tensor, batch_size: int = 256) -> Tensor:
    """Reconstructions (N, P) of networks ``thetas`` (N, P), ``batch_size`` at a time, without gradients.

    Runs in eval mode (the model's mode is restored afterwards); batches go to the model's device and the
    result comes back on ``thetas``' device.
    """
    if thetas.ndim != 2 or thetas.shape[1] != ae.spec.num_params:
        raise ValueError(f"reconstruct: expected thetas of shape (N, {ae.spec.num_params}), got {tuple(thetas.shape)}")
    device = next(ae.parameters()).device
    was_training = ae.training
    ae.eval()
    try:
        parts = [ae(thetas[s : s + batch_size].to(device)).to(thetas.device) for s in range(0, len(thetas), batch_size)]
    finally:
        ae.train(was_training)
    return torch.cat(parts) if parts else thetas.new_zeros(0, ae.spec.num_params)


class _Split:
    """The networks of one zoo split on the device, with fixed images and the originals' predictions."""

    def __init__(self, spec: NetSpec, thetas: Tensor, x: Tensor, y: Tensor) -> None:
        self.spec, self.thetas, self.x, self.y = spec, thetas, x, y
        self.logp = log_probs(spec, thetas, x)

    def measure(self, ae: Autoencoder, settings: FitSettings) -> dict[str, float]:
        """The fidelity of ``ae``'s reconstructions of these networks (:func:`symzoo.fit.fidelity.fidelity`)."""
        recon = reconstruct(ae, self.thetas, settings.batch_size)
        return fidelity(self.logp, log_probs(self.spec, recon, self.x), self.y)


def _score(metrics: dict[str, float], select: str) -> tuple[float, float]:
    """Lower is better: the selection criterion, then the KL to break ties."""
    return (abs(metrics["acc_gap"]) if select == "acc_gap" else metrics["kl"], metrics["kl"])


# --------------------------------------------------------------------------------------------------
# inputs


def _device(device: str | torch.device) -> torch.device:
    return resolve(device) if isinstance(device, str) and device in CHOICES else torch.device(device)


def _check_inputs(zoo: Zoo, images: ImageSet, zoo_dir: Path, images_path: Path) -> dict[str, np.ndarray]:
    ids = {split: zoo.ids(split) for split in ("train", "val", "test")}
    for split in ("train", "val"):
        if len(ids[split]) == 0:
            raise ValueError(
                f"zoo {zoo_dir}: no kept networks in the {split!r} split ({zoo_dir / 'models.parquet'}); "
                "the autoencoder needs train and val networks"
            )
    spec = zoo.spec
    if tuple(images.input_shape) != tuple(spec.input_shape):
        raise ValueError(
            f"image set {images_path}: images of shape {tuple(images.input_shape)} do not fit zoo {zoo_dir}, "
            f"whose networks take {tuple(spec.input_shape)}"
        )
    if images.num_classes > spec.num_classes:
        raise ValueError(
            f"image set {images_path}: labels go up to {images.num_classes - 1}, but the networks of zoo {zoo_dir} "
            f"have {spec.num_classes} classes"
        )
    for split in ("train", "val", "test"):
        if len(images.split(split)[0]) == 0:
            raise ValueError(f"image set {images_path}: x_{split} is empty")
    dataset = zoo.meta.get("dataset")
    if dataset is not None and dataset != images_path.stem:
        log.warning("zoo %s was trained on %r, but the image set is %s", zoo_dir, dataset, images_path)
    return ids


def _fingerprint(zoo: Zoo, ids: dict[str, np.ndarray], images: ImageSet) -> dict[str, Any]:
    """What a checkpoint must share with this run to be resumed: the spec, the networks and the images."""
    digest = hashlib.sha256()
    for split in ("train", "val"):
        digest.update(np.ascontiguousarray(ids[split], dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(zoo.params[ids[split]]).tobytes())
    for name in ("x_train", "x_val"):
        digest.update(np.ascontiguousarray(getattr(images, name)).tobytes())
    return {"spec": zoo.spec.to_dict(), "sha256": digest.hexdigest()}


def _fixed_images(images: ImageSet, split: str, settings: FitSettings, device: torch.device) -> tuple[Tensor, Tensor]:
    """``val_images`` images (all if fewer) of one split with their labels, chosen once by the seed."""
    x, y = (torch.from_numpy(a) for a in images.split(split))
    if settings.val_images < len(x):
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(settings.seed))[: settings.val_images]
        x, y = x[pick], y[pick]
    return x.to(device), y.to(device)


def _subset(ids: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """``n`` of the ``ids`` (all if None or more), a seeded choice kept in id order."""
    if n is None or n >= len(ids):
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


# --------------------------------------------------------------------------------------------------
# checkpoint


def _rng_state(sampler: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    state = {"sampler": sampler.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Tensor], sampler: torch.Generator, device: torch.device) -> None:
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _cpu_state_dict(ae: Autoencoder) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in ae.state_dict().items()}


def _load_checkpoint(path: Path, settings: FitSettings, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to this run; a stale or unreadable one is set aside with a warning."""
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        log.warning("%s: not a readable checkpoint (%s); starting afresh", path, err)
        return None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        log.warning(
            "%s: checkpoint version %r is not %d; starting afresh", path, ckpt.get("version"), CHECKPOINT_VERSION
        )
        return None
    if ckpt.get("settings") != asdict(settings) or ckpt.get("fingerprint") != fingerprint:
        log.warning("%s: written for other settings, networks or images; starting afresh", path)
        return None
    return ckpt


# --------------------------------------------------------------------------------------------------
# training


def _history_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fit_autoencoder(
    zoo_dir: str | Path,
    images_path: str | Path,
    out_dir: str | Path,
    settings: FitSettings,
    device: str | torch.device = "auto",
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train an autoencoder on the zoo at ``zoo_dir`` with the image set ``images_path``; write ``out_dir``.

    Writes ``model.pt`` (best epoch), ``history.parquet`` and ``summary.json``, and returns the summary.
    Resumes from ``out_dir/checkpoint.pt`` when it was written for the same settings, networks and images.
    ``on_epoch(row)`` is called with each epoch's history row once that epoch's checkpoint is on disk (a hook
    for tests and monitoring: an exception there stops the run as a kill would).
    """
    zoo_dir, images_path, out_dir = Path(zoo_dir), Path(images_path), Path(out_dir)
    device = _device(device)
    zoo = read_zoo(zoo_dir)
    images = load_image_set(images_path)
    ids = _check_inputs(zoo, images, zoo_dir, images_path)
    ids["train"] = _subset(ids["train"], settings.train_networks, settings.seed)
    fingerprint = _fingerprint(zoo, ids, images)
    ckpt_path = out_dir / CHECKPOINT
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL, HISTORY, SUMMARY):  # a new run: no output of an older one may look like its result
        (out_dir / name).unlink(missing_ok=True)
    for name in (MODEL, HISTORY, SUMMARY, CHECKPOINT):  # temporaries of a writer that was killed (atomic_path)
        for tmp in out_dir.glob(f".{name}.*.tmp*"):
            tmp.unlink(missing_ok=True)

    cuda_devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=cuda_devices):  # the caller's random state stays untouched
        return _fit(
            zoo, ids, images, images_path, out_dir, settings, device, progress, on_epoch, fingerprint, ckpt_path
        )


def _fit(
    zoo: Zoo,
    ids: dict[str, np.ndarray],
    images: ImageSet,
    images_path: Path,
    out_dir: Path,
    settings: FitSettings,
    device: torch.device,
    progress: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    fingerprint: dict[str, Any],
    ckpt_path: Path,
) -> dict[str, Any]:
    spec = zoo.spec
    started = time.perf_counter()
    train = zoo.tensor(ids["train"], device)
    x_train = torch.from_numpy(images.x_train).to(device)
    val = _Split(spec, zoo.tensor(ids["val"], device), *_fixed_images(images, "val", settings, device))

    torch.manual_seed(settings.seed)
    ae = build_autoencoder(
        spec,
        settings.kind,
        hidden=settings.hidden,
        layers=settings.layers,
        latent=settings.latent,
        dropout=settings.dropout,
        message=settings.message,
        readout=settings.readout,
        message_passing=settings.message_passing,
        decoder_widths=settings.decoder_widths,
        decoder_output=settings.decoder_output,
        thetas_train=train.cpu(),
    ).to(device)
    opt = torch.optim.AdamW(
        ae.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, amsgrad=settings.amsgrad
    )
    warmup = settings.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    sampler = torch.Generator().manual_seed(settings.seed)

    epoch, step, bad_epochs, stopped = 0, 0, 0, False
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "score": None, "metrics": None, "state_dict": None}
    ckpt = _load_checkpoint(ckpt_path, settings, fingerprint)
    if ckpt is not None:
        ae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])  # after the scheduler exists: its constructor resets the lr
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"], sampler, device)
        epoch, step, bad_epochs, stopped = ckpt["epoch"], ckpt["step"], ckpt["bad_epochs"], ckpt["stopped"]
        history, best = list(ckpt["history"]), dict(ckpt["best"])
        log.info("%s: resuming after epoch %d (step %d)", ckpt_path, epoch, step)

    n_train = len(train)
    bar = tqdm(
        total=settings.epochs, initial=epoch, desc=f"autoencoder {settings.kind}", unit="epoch", disable=not progress
    )
    while not stopped and epoch < settings.epochs:
        tick = time.perf_counter()
        epoch += 1
        ae.train()
        kl_sum = torch.zeros((), dtype=torch.float64, device=device)
        order = torch.randperm(n_train, generator=sampler)
        for s in range(0, n_train, settings.batch_size):
            thetas = train[order[s : s + settings.batch_size].to(device)]
            x = x_train[torch.randint(len(x_train), (settings.images_per_step,), generator=sampler).to(device)]
            with torch.no_grad():
                target = batched_forward(spec, thetas, x)
            loss = kl_loss(batched_forward(spec, ae(thetas), x), target, settings.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ae.parameters(), settings.clip)
            lr = float(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            step += 1
            kl_sum += loss.detach().double() * len(thetas)
        row: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "lr": lr,
            "train_kl": kl_sum.item() / n_train,
        }
        if not math.isfinite(row["train_kl"]):
            raise FloatingPointError(
                f"{out_dir}: training diverged at epoch {epoch} (train KL {row['train_kl']}); lower lr or check the zoo"
            )
        row |= {f"val_{name}": None for name in VALIDATION}
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            metrics = val.measure(ae, settings)
            row |= {f"val_{name}": metrics[name] for name in VALIDATION}
            score = _score(metrics, settings.select)
            if best["epoch"] is None or score < tuple(best["score"]):
                best = {"epoch": epoch, "score": score, "metrics": metrics, "state_dict": _cpu_state_dict(ae)}
            bad_epochs = epoch - best["epoch"]
            if settings.patience is not None and bad_epochs >= settings.patience and epoch < settings.epochs:
                stopped = True
        row["seconds"] = time.perf_counter() - tick
        history.append(row)
        checkpoint = {
            "version": CHECKPOINT_VERSION,
            "settings": asdict(settings),
            "fingerprint": fingerprint,
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
        with atomic_path(ckpt_path) as tmp:
            torch.save(checkpoint, tmp)
        del checkpoint
        log.info(
            "epoch %d/%d: step %d, lr %.3g, train KL %.5f, val KL %s, ident. %s / %s, acc %s -> %s, tau %s, %.1fs",
            epoch,
            settings.epochs,
            step,
            row["lr"],
            row["train_kl"],
            _fmt(row["val_kl"], ".5f"),
            _fmt(row["val_ident_recon"], ".3f"),
            _fmt(row["val_ident_orig"], ".3f"),
            _fmt(row["val_orig_acc"], ".3f"),
            _fmt(row["val_recon_acc"], ".3f"),
            _fmt(row["val_kendall_tau"], ".3f"),
            row["seconds"],
        )
        bar.update(1)
        bar.set_postfix(train_kl=f"{row['train_kl']:.4f}", val_kl=_fmt(row["val_kl"], ".4f"), best=best["epoch"])
        if stopped:
            log.info(
                "early stopping after epoch %d: no better val %s for %d epochs", epoch, settings.select, bad_epochs
            )
        if on_epoch is not None:
            on_epoch(dict(row))
    bar.close()

    # the best model, measured on the test networks and test images
    ae.load_state_dict(best["state_dict"])
    ae.eval()
    test_metrics = None
    if len(ids["test"]):
        test_metrics = _Split(
            spec, zoo.tensor(ids["test"], device), *_fixed_images(images, "test", settings, device)
        ).measure(ae, settings)
    else:
        log.warning("zoo %s has no kept test networks: summary.json has no test metrics", zoo.root)

    summary = {
        "zoo": str(zoo.root),
        "images": str(images_path),
        "kind": settings.kind,
        "settings": asdict(settings),
        "best_epoch": best["epoch"],
        "epochs_run": epoch,
        "stopped_early": stopped,
        "steps": step,
        "val": best["metrics"],
        "test": test_metrics,
        "networks": {split: len(v) for split, v in ids.items()},
        "num_params": sum(p.numel() for p in ae.parameters()),
        "train_seconds": sum(r["seconds"] for r in history),  # all epochs, over every (resumed) session
        "wall_seconds": time.perf_counter() - started,  # this session, set-up and test metrics included
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    summary = _json_ready(summary)
    model = {
        "config": ae.config(),
        "state_dict": best["state_dict"],
        "settings": asdict(settings),
        "epoch": best["epoch"],
    }
    with atomic_path(out_dir / MODEL) as tmp:
        torch.save(model, tmp)
    with atomic_path(out_dir / HISTORY) as tmp:
        _history_frame(history).write_parquet(tmp)
    with atomic_path(out_dir / SUMMARY) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    ckpt_path.unlink(missing_ok=True)
    log.info("best epoch %s: val %s; wrote %s, %s, %s", best["epoch"], best["metrics"], MODEL, HISTORY, SUMMARY)
    return summary


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def load_autoencoder(model_path: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The autoencoder saved in ``model_path`` (a ``model.pt`` of :func:`fit_autoencoder`), in eval mode."""
    model_path = Path(model_path)
    try:
        saved = torch.load(model_path, map_location="cpu", weights_only=True)
        ae = Autoencoder.from_config(saved["config"], saved["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{model_path}: not a saved autoencoder ({err})") from err
    return ae.to(_device(device)).eval()
