"""The one training loop: a model, a loss over a batch of training networks, a validation score.

Every trained model of symzoo (the autoencoders, the generalization predictors, and any later metanetwork: a
weight-space operator, a flow-matching vector field) is fitted by :func:`train`. The caller brings three things:

- ``loss(batch, generator)``: the mean loss over a batch of training examples, given as indices (a long tensor
  on the model's device) into the caller's training set; ``generator`` (a CPU :class:`torch.Generator`) is the
  loop's sampler, for anything else drawn per step (e.g. the images a functional loss is measured on);
- ``validate(model)``: the validation measures, a mapping of names to floats, computed in eval mode;
- ``score(measures)``: a tuple, lower is better, that picks the best epoch.

:class:`OptimSettings` holds what every model trains with: AdamW (``lr``, ``weight_decay``, ``amsgrad``), the
learning rate warmed up linearly over ``warmup_steps`` optimizer steps, then constant
(:func:`symzoo.fit.optim.adamw_with_warmup`); gradient norm clipped to ``clip``; ``epochs`` passes over the
training set, each in a fresh random order in batches of ``batch_size`` (the last may be smaller); validation
every ``eval_every`` epochs and at the last one; the epoch with the lowest score kept; training stopped once
``patience`` epochs pass without a new best. ``select`` names the selection measure for the caller's ``score``
(each model states in the config schema which measures it offers).

Resume: after every epoch the loop hands a state (model, optimizer, scheduler, every random state, the best
model, the history, the early-stopping counter) to ``save_state``; started again with that state as ``resume``,
it continues after that epoch and ends, on the CPU, with exactly the weights of an uninterrupted run. The loop
reads and writes no file: a stage keeps the state with :mod:`symzoo.checkpoint`.

Random state: call the loop inside :func:`seeded` (which also seeds the model's initialisation), so that the
caller's random state is left untouched and the same seed gives the same bytes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from symzoo.fit.optim import adamw_with_warmup

log = logging.getLogger(__name__)

STATE_VERSION = 2
"""Version of the resume state; a saved state of another version is not resumed."""


@dataclass(frozen=True)
class OptimSettings:
    """How a model is optimised: the ``$defs/optimizer`` keys of the config schema (which documents each and
    holds the bounds; each model's entry holds its defaults)."""

    lr: float
    weight_decay: float
    amsgrad: bool
    warmup_steps: int
    clip: float
    batch_size: int
    epochs: int
    patience: int | None
    eval_every: int
    select: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OptimSettings:
        """The optimiser keys of a validated model entry (other keys are ignored)."""
        return cls(**{f.name: options[f.name] for f in fields(cls)})

    def to_options(self) -> dict[str, Any]:
        return asdict(self)

    def steps_per_epoch(self, n_train: int) -> int:
        return -(-n_train // self.batch_size)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block (build a model, train it) with torch's random state seeded by ``seed``, restoring the
    caller's state (CPU, and the CUDA device's) afterwards."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@dataclass
class Trained:
    """A finished run: the model (its best epoch's weights loaded, in eval mode), that epoch and its validation
    measures, the history (one row per epoch: epoch, step, lr, the train loss, ``val_<measure>``, None where not
    validated) and how the run ended."""

    model: nn.Module
    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, Any]]
    epochs_run: int
    steps: int
    stopped_early: bool


def train(
    model: nn.Module,
    loss: Callable[[Tensor, torch.Generator], Tensor],
    validate: Callable[[nn.Module], Mapping[str, float]],
    score: Callable[[Mapping[str, float]], tuple[float, ...]],
    n_train: int,
    optim: OptimSettings,
    seed: int,
    *,
    measures: Sequence[str],
    train_column: str = "train_loss",
    desc: str = "training",
    resume: Mapping[str, Any] | None = None,
    save_state: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> Trained:
    """Train ``model`` on ``n_train`` examples (see the module docstring).

    ``measures`` are the validation measures recorded per epoch (as ``val_<name>``), ``train_column`` names the
    epoch's mean training loss in the history. ``save_state(state)`` receives the resume state after each epoch,
    ``on_epoch(row)`` that epoch's history row afterwards (an exception there stops the run as a kill would).
    A non-finite training loss is an error that names the epoch.
    """
    device = next(model.parameters()).device
    opt, sched = adamw_with_warmup(
        model.parameters(),
        optim.lr,
        optim.weight_decay,
        optim.amsgrad,
        optim.warmup_steps,
        optim.epochs * optim.steps_per_epoch(n_train),
    )
    sampler = torch.Generator().manual_seed(seed)

    epoch, step, bad_epochs, stopped = 0, 0, 0, False
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "score": None, "metrics": None, "state_dict": None}
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])  # after the scheduler exists: its constructor resets the lr
        sched.load_state_dict(resume["scheduler"])
        _set_rng_state(resume["rng"], sampler, device)
        epoch, step, bad_epochs, stopped = resume["epoch"], resume["step"], resume["bad_epochs"], resume["stopped"]
        history, best = list(resume["history"]), dict(resume["best"])
        log.info("%s: resuming after epoch %d (step %d)", desc, epoch, step)

    bar = tqdm(
        total=optim.epochs,
        initial=epoch,
        desc=desc,
        unit="epoch",
        disable=None if progress else True,  # None: no bar when stderr is not a terminal (a log file)
    )
    while not stopped and epoch < optim.epochs:
        tick = time.perf_counter()
        epoch += 1
        model.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in torch.randperm(n_train, generator=sampler).split(optim.batch_size):
            value = loss(batch.to(device), sampler)
            opt.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(model.parameters(), optim.clip)
            lr = float(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            step += 1
            total += value.detach().double() * len(batch)
        row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": lr, train_column: total.item() / n_train}
        if not math.isfinite(row[train_column]):
            raise FloatingPointError(
                f"{desc}: training diverged at epoch {epoch} ({train_column} {row[train_column]}); "
                "lower lr or check the zoo"
            )
        row |= {f"val_{name}": None for name in measures}
        if epoch % optim.eval_every == 0 or epoch == optim.epochs:
            model.eval()
            metrics = dict(validate(model))
            row |= {f"val_{name}": metrics[name] for name in measures}
            value = score(metrics)
            if best["epoch"] is None or value < tuple(best["score"]):
                best = {"epoch": epoch, "score": value, "metrics": metrics, "state_dict": _cpu_state_dict(model)}
            bad_epochs = epoch - best["epoch"]
            if optim.patience is not None and bad_epochs >= optim.patience and epoch < optim.epochs:
                stopped = True
        history.append(row)
        if save_state is not None:
            save_state(
                {
                    "epoch": epoch,
                    "step": step,
                    "bad_epochs": bad_epochs,
                    "stopped": stopped,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": _rng_state(sampler, device),
                    "best": best,
                    "history": history,
                }
            )
        shown = ", ".join(f"{k.removeprefix('val_')} {_fmt(v)}" for k, v in row.items() if k.startswith("val_"))
        log.info(
            "%s epoch %d/%d: step %d, lr %.3g, %s %.5f; val %s; %.1fs",
            desc, epoch, optim.epochs, step, lr, train_column, row[train_column], shown, time.perf_counter() - tick,
        )  # fmt: skip
        bar.update(1)
        bar.set_postfix({train_column: f"{row[train_column]:.4f}", "best": best["epoch"]})
        if stopped:
            log.info("%s: early stopping after epoch %d: no better val %s for %d epochs", desc, epoch, optim.select,
                     bad_epochs)  # fmt: skip
        if on_epoch is not None:
            on_epoch(dict(row))
    bar.close()

    model.load_state_dict(best["state_dict"])
    model.eval()
    log.info("%s: best epoch %s of %d: val %s", desc, best["epoch"], epoch, best["metrics"])
    return Trained(model, best["epoch"], best["metrics"], history, epoch, step, stopped)


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


def _cpu_state_dict(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
