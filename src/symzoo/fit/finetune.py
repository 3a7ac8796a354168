"""Single-shot fine-tuning (Kalogeropoulos et al., "Symmetry-Aware Fully-Amortized Optimization with Scale
Equivariant Graph Metanetworks"): an equivariant operator trained to improve networks in one forward pass, and
the SGD baseline it replaces.

The objective of a network θ on images (x, y), for the operator's output and for SGD alike:
``CE(f_θ(x), y) + λ ||θ||_1`` (all parameters, biases included; λ = 0 is a pure fine-tuner). The operator
(:class:`~symzoo.models.operators.Finetuner`, ``θ' = θ + γ_l ⊙ op(θ)``) is trained on the train networks with
training images (``images_per_step`` drawn afresh every step, shared by the step's networks) through the one
training loop, its parameters only (the zoo's networks are never trained); the epoch with the lowest validation
objective (val networks, ``val_images`` fixed validation images) is kept. The SGD baseline
(:func:`sgd_population`) fine-tunes each test network on the training images with the zoo's own vmapped population
trainer (plain SGD, no momentum, each network its own batch order), and :func:`sgd_alone` does the same for one
network with ``torch.optim`` (the timing of "one network fine-tuned alone", and the check that the two agree).

:func:`measures` scores tuned networks against the networks they came from, on test images: accuracy, CE, L1
norm, the objective, sparsity (the reduction of the L1 norm in percent), KL(orig ‖ tuned) at T = 1 and prediction
agreement.
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
import torch.nn.functional as F
from torch import Tensor

from symzoo.fit.fidelity import log_probs, paired_kl
from symzoo.fit.train import OptimSettings, Trained, seeded, train
from symzoo.models.layers import eval_mode
from symzoo.models.operators import Finetuner, OperatorArch, build_operator
from symzoo.nets.functional import batched_forward, evaluate
from symzoo.nets.spec import NetSpec
from symzoo.zoo.rng import CounterRNG
from symzoo.zoo.sample import CONFIG_SCHEMA
from symzoo.zoo.state import TrainSettings, initial_state
from symzoo.zoo.train import train_population

log = logging.getLogger(__name__)

MEASURES = ("loss", "ce", "accuracy", "l1")
"""Validation measures recorded per epoch (as ``val_<name>``): the objective, its CE and L1 parts, the accuracy."""
SELECT = {"loss": lambda m: (m["loss"],), "accuracy": lambda m: (-m["accuracy"], m["loss"])}
"""Selection measures (lower is better): the validation objective (the reference's), or the accuracy."""
HISTORY_SCHEMA: dict[str, type[pl.DataType]] = {
    "epoch": pl.Int64,
    "step": pl.Int64,
    "lr": pl.Float64,
    "train_loss": pl.Float64,
    **{f"val_{name}": pl.Float64 for name in MEASURES},
}


@dataclass(frozen=True)
class FinetuneSettings:
    """An operator entry of the config (``finetune.operators.<name>``, the schema holds the defaults) with the
    objective's ``l1`` (λ): the operator's :class:`~symzoo.models.operators.OperatorArch`, γ's initial value
    ``gamma``, the images a step and validation see, the :class:`~symzoo.fit.train.OptimSettings` and the seed."""

    arch: OperatorArch
    optim: OptimSettings
    gamma: float
    l1: float
    images_per_step: int
    val_images: int
    seed: int

    def __post_init__(self) -> None:
        if self.optim.select not in SELECT:
            raise ValueError(f"finetune settings: select must be one of {tuple(SELECT)}, not {self.optim.select!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], l1: float) -> FinetuneSettings:
        own = {f.name: options[f.name] for f in fields(cls) if f.name not in ("arch", "optim", "l1")}
        return cls(arch=OperatorArch.from_options(options), optim=OptimSettings.from_options(options), l1=l1, **own)

    def to_options(self) -> dict[str, Any]:
        own = {k: v for k, v in asdict(self).items() if k not in ("arch", "optim")}
        return self.arch.to_dict() | self.optim.to_options() | own


def objective(spec: NetSpec, thetas: Tensor, x: Tensor, y: Tensor, l1: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per network (M,): the objective ``CE + l1 * ||θ||_1``, its mean CE on images ``x`` (B, ...) with labels
    ``y`` (B,), and its L1 norm (differentiable)."""
    logits = batched_forward(spec, thetas, x)
    ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(thetas)), reduction="none").view(len(thetas), -1).mean(1)
    norm = thetas.abs().sum(1)
    return ce + l1 * norm, ce, norm


@torch.no_grad()
def apply(model: Finetuner, thetas: Tensor, batch_size: int = 256) -> Tensor:
    """The tuned networks (N, P) of ``thetas`` (N, P), in eval mode, ``batch_size`` at a time, on the model's device
    (the result on ``thetas``' device)."""
    with eval_mode(model) as device:
        parts = [model(t.to(device)).to(thetas.device) for t in thetas.split(batch_size)]
    return torch.cat(parts) if parts else thetas.clone()


def _measure(spec: NetSpec, thetas: Tensor, x: Tensor, y: Tensor, l1: float) -> dict[str, float]:
    ce, acc = evaluate(spec, thetas, x, y)
    norm = thetas.abs().sum(1).double().mean().item()
    return {"loss": ce.double().mean().item() + l1 * norm, "ce": ce.double().mean().item(),
            "accuracy": acc.double().mean().item(), "l1": norm}  # fmt: skip


def fit_finetuner(
    spec: NetSpec,
    settings: FinetuneSettings,
    thetas_train: Tensor,
    thetas_val: Tensor,
    train_images: tuple[Tensor, Tensor],
    val_images: tuple[Tensor, Tensor],
    device: torch.device,
    progress: bool = True,
    resume: Mapping[str, Any] | None = None,
    save_state: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> Trained:
    """Train a :class:`~symzoo.models.operators.Finetuner` on the networks ``thetas_train`` (N, P) with the
    objective on ``train_images`` (x, y), selecting on ``thetas_val`` with ``val_images`` (both on ``device``)."""
    thetas = thetas_train.to(device)
    x_train, y_train = train_images
    x_val, y_val = val_images
    with seeded(settings.seed, device):
        model = Finetuner(build_operator(spec, settings.arch, thetas.cpu()), settings.gamma).to(device)

        def loss(batch: Tensor, generator: torch.Generator) -> Tensor:
            pick = torch.randint(len(x_train), (settings.images_per_step,), generator=generator).to(device)
            return objective(spec, model(thetas[batch]), x_train[pick], y_train[pick], settings.l1)[0].mean()

        def validate(m: Finetuner) -> dict[str, float]:
            return _measure(spec, apply(m, thetas_val), x_val, y_val, settings.l1)

        return train(
            model,
            loss,
            validate,
            SELECT[settings.optim.select],
            len(thetas),
            settings.optim,
            settings.seed,
            measures=MEASURES,
            desc=f"finetune {settings.arch.kind} (l1 {settings.l1:g})",
            resume=resume,
            save_state=save_state,
            on_epoch=on_epoch,
            progress=progress,
        )


# The SGD baseline ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SGDSettings:
    """The baseline's ``finetune.sgd`` keys: ``epochs`` (the budgets, each a checkpoint of one run), ``lr``,
    ``batch_size``, ``alone`` (networks also fine-tuned one at a time with ``torch.optim``), the ``seed`` of the
    batch orders; and the objective's ``l1``."""

    epochs: tuple[int, ...]
    lr: float
    batch_size: int
    alone: int
    seed: int
    l1: float

    @classmethod
    def from_options(cls, options: Mapping[str, Any], l1: float, seed: int) -> SGDSettings:
        return cls(tuple(sorted(options["epochs"])), options["lr"], options["batch_size"], options["alone"], seed, l1)


def sgd_configs(n: int, settings: SGDSettings) -> pl.DataFrame:
    """The population's configurations: plain SGD at ``lr`` for every network, no dropout, no L2, every training
    image; network i's batch order is keyed by ``seed + i``."""
    values = {
        "run_id": [f"finetune-{i:06d}" for i in range(n)],
        "seed": [settings.seed + i for i in range(n)],
        "optimizer": ["sgd"] * n,
        "learning_rate": [settings.lr] * n,
        "l2": [0.0] * n,
        "dropout": [0.0] * n,
        "init": ["normal"] * n,  # unused: the networks start from the zoo's parameters
        "init_std": [1.0] * n,
        "train_fraction": [1.0] * n,
    }
    return pl.DataFrame(values, schema=CONFIG_SCHEMA)


def sgd_population(
    spec: NetSpec, thetas: Tensor, data: Mapping[str, Tensor], settings: SGDSettings, device: torch.device,
    progress: bool = True,
) -> tuple[dict[int, Tensor], dict[int, float]]:  # fmt: skip
    """Fine-tune every network of ``thetas`` (N, P) with SGD on ``data["x_train"]`` as one vmapped population (the
    zoo trainer, :func:`symzoo.zoo.train.train_population`). Returns the networks after each budget of
    ``settings.epochs`` (epoch → (N, P) on the CPU) and the wall-clock seconds the population took to get there."""
    configs = sgd_configs(len(thetas), settings)
    state = initial_state(spec, configs)
    state.params = thetas.detach().to("cpu", torch.float32).clone()
    train_settings = TrainSettings(
        epochs=max(settings.epochs), checkpoints=settings.epochs, batch_size=settings.batch_size, l1=settings.l1
    )
    seconds: dict[int, float] = {}
    start = _clock(device)

    def tick(s) -> None:
        if s.epoch in settings.epochs:
            seconds[s.epoch] = _clock(device) - start

    state = train_population(spec, configs, data, train_settings, device, progress, state=state, on_epoch=tick)
    return {epoch: state.checkpoints[epoch] for epoch in settings.epochs}, seconds


def sgd_alone(
    spec: NetSpec, theta: Tensor, data: Mapping[str, Tensor], settings: SGDSettings, index: int, device: torch.device
) -> tuple[dict[int, Tensor], dict[int, float]]:
    """Network ``index`` of the population (its parameters ``theta`` (P,)) fine-tuned alone: a ``torch.optim.SGD``
    loop on one leaf tensor, fed the batches the population gives it. Returns it after each budget (CPU) and the
    seconds it took to get there."""
    configs = sgd_configs(index + 1, settings)[index:]
    x, y = data["x_train"].to(device), data["y_train"].to(device)
    rng = CounterRNG.for_configs(spec, configs, len(x), settings.batch_size, device)
    theta = theta.detach().to(device, torch.float32).clone().requires_grad_(True)
    opt = torch.optim.SGD([theta], lr=settings.lr)
    out, seconds, start = {}, {}, _clock(device)
    for epoch in range(1, max(settings.epochs) + 1):
        for idx in rng.epoch_indices(epoch)[0]:
            loss = objective(spec, theta[None], x[idx], y[idx], settings.l1)[0][0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch in settings.epochs:
            seconds[epoch] = _clock(device) - start
            out[epoch] = theta.detach().to("cpu", copy=True)
    return out, seconds


def _clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds (CUDA synchronised)."""
    start = _clock(device)
    result = fn()
    return result, _clock(device) - start


# Measures ------------------------------------------------------------------------------------------------------


@torch.no_grad()
def measures(spec: NetSpec, initial: Tensor, tuned: Tensor, x: Tensor, y: Tensor, l1: float) -> pl.DataFrame:
    """Per network: the initial and tuned accuracy, CE and L1 norm on images ``x`` (labels ``y``), the tuned
    network's objective (``CE + l1 * L1``), its ``sparsity`` (reduction of the L1 norm in percent), and its fidelity
    to its input: ``kl`` (KL(initial ‖ tuned) at T = 1, mean over images) and ``agreement`` (same top class)."""
    ce0, acc0 = evaluate(spec, initial, x, y)
    ce1, acc1 = evaluate(spec, tuned, x, y)
    l1_0, l1_1 = initial.abs().sum(1).double(), tuned.abs().sum(1).double()
    kl, agree = [], []
    for a, b in zip(initial.split(64), tuned.split(64), strict=True):
        p, q = log_probs(spec, a, x), log_probs(spec, b, x)
        kl.append(paired_kl(p, q))
        agree.append((p.argmax(-1) == q.argmax(-1)).double().mean(1))
    return pl.DataFrame(
        {
            "initial_accuracy": acc0.double().numpy(),
            "initial_ce": ce0.double().numpy(),
            "initial_l1": l1_0.numpy(),
            "accuracy": acc1.double().numpy(),
            "ce": ce1.double().numpy(),
            "l1": l1_1.numpy(),
            "loss": (ce1.double() + l1 * l1_1).numpy(),
            "sparsity": (100 * (1 - l1_1 / l1_0)).numpy(),
            "kl": torch.cat(kl).numpy() if kl else np.zeros(0),
            "agreement": torch.cat(agree).numpy() if agree else np.zeros(0),
        }
    )
