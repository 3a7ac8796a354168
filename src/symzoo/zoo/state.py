"""What a population's training is and where it has got to: its settings, its state, and resuming a state.

:class:`TrainSettings` says how a population trains; :class:`TrainState` holds everything needed to continue
(parameters, optimizer moments, counters, the checkpoints and metrics recorded so far). A resumed run repeats
the uninterrupted one bit for bit (on the CPU; see :mod:`symzoo.zoo.rng`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import CONFIG_SCHEMA, init_params

METRIC_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
DATA_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
STATE_VERSION = 1


@dataclass(frozen=True)
class TrainSettings:
    """How a population trains.

    ``epochs`` to train; ``checkpoints``: epochs (0 = the initialisation) whose parameters and metrics are
    kept; ``batch_size`` of every step; ``eval_batch_size``: images per evaluation batch (memory only).
    ``trace``: run the training step as a traced and rewritten graph (:mod:`symzoo.zoo.step`; faster, the
    same arithmetic up to float rounding); False: eager ``vmap``. ``compile``: also ``torch.compile`` the
    step (one-off cost of about half a minute per shape, faster steps; for long runs).
    """

    epochs: int
    checkpoints: tuple[int, ...]
    batch_size: int = 32
    eval_batch_size: int = 2048
    compile: bool = False
    trace: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoints", tuple(sorted({int(c) for c in self.checkpoints})))
        if self.epochs < 0:
            raise ValueError(f"train settings: epochs must be >= 0, got {self.epochs}")
        if any(not 0 <= c <= self.epochs for c in self.checkpoints):
            raise ValueError(f"train settings: checkpoints {self.checkpoints} must lie in [0, epochs={self.epochs}]")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"train settings: batch sizes must be >= 1, got {self.batch_size}, {self.eval_batch_size}")


@dataclass
class TrainState:
    """Everything needed to continue training a population (all tensors on the CPU, rows in config order).

    ``epoch``/``step``: epochs / optimizer steps done. ``checkpoints``: epoch → params (M, P).
    ``metrics``: one row per (network, checkpoint epoch). ``configs``/``fingerprint`` guard a resume
    against a different population or setup.
    """

    configs: dict[str, list]
    fingerprint: dict[str, int]
    epoch: int
    step: int
    params: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    checkpoints: dict[int, torch.Tensor] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return list(self.configs["run_id"])

    def metrics_frame(self) -> pl.DataFrame:
        """Columns run_id, epoch, train/val/test loss and accuracy; sorted by epoch, then config order."""
        schema = {"run_id": pl.String, "epoch": pl.Int64} | {c: pl.Float64 for c in METRIC_COLUMNS}
        return pl.DataFrame(self.metrics, schema=schema)

    def checkpoint_params(self) -> tuple[list[int], torch.Tensor]:
        """(epochs, params (len(epochs), M, P)) of the checkpoints recorded so far, by epoch."""
        epochs = sorted(self.checkpoints)
        if not epochs:
            return [], torch.zeros(0, *self.params.shape)
        return epochs, torch.stack([self.checkpoints[e] for e in epochs])

    def to_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "configs": self.configs,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "params": self.params,
            "exp_avg": self.exp_avg,
            "exp_avg_sq": self.exp_avg_sq,
            "checkpoints": dict(self.checkpoints),
            "metrics": list(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"training state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(**{k: v for k, v in data.items() if k != "version"})


def save_state(state: TrainState, path: str | os.PathLike) -> None:
    """Write ``state`` with ``torch.save`` atomically (a reader sees the old file or the new one)."""
    with atomic_path(path) as tmp:
        torch.save(state.to_dict(), tmp)


def load_state(path: str | os.PathLike) -> TrainState:
    """Read a state written by :func:`save_state` (plain tensors and lists: ``weights_only`` safe)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable training state ({err})") from err
    try:
        return TrainState.from_dict(data)
    except (AttributeError, TypeError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a training state ({err})") from err


def configs_dict(configs: pl.DataFrame) -> dict[str, list]:
    """The configuration columns of ``configs`` (:data:`symzoo.zoo.sample.CONFIG_SCHEMA`) as lists."""
    return {name: configs[name].to_list() for name in CONFIG_SCHEMA}


def initial_state(spec: NetSpec, configs: pl.DataFrame, settings: TrainSettings, n_train: int) -> TrainState:
    """A population at epoch 0: parameters from :func:`symzoo.zoo.sample.init_params`, fresh optimizers."""
    params = init_params(spec, configs)
    return TrainState(
        configs=configs_dict(configs),
        fingerprint={"num_params": spec.num_params, "n_train": n_train, "batch_size": settings.batch_size},
        epoch=0,
        step=0,
        params=params,
        exp_avg=torch.zeros_like(params),
        exp_avg_sq=torch.zeros_like(params),
    )


def check_resume(
    state: TrainState, spec: NetSpec, configs: pl.DataFrame, settings: TrainSettings, n_train: int
) -> None:
    """Raise ``ValueError`` naming what differs if ``state`` is not of this population and setup."""
    expected = {"num_params": spec.num_params, "n_train": n_train, "batch_size": settings.batch_size}
    for name, value in expected.items():
        if state.fingerprint.get(name) != value:
            raise ValueError(f"training state: {name} is {state.fingerprint.get(name)}, this run has {value}")
    ours = configs_dict(configs)
    for name, values in ours.items():
        if state.configs.get(name) != values:
            raise ValueError(f"training state: configs column {name!r} differs from this run's configs")
    if tuple(state.params.shape) != (len(configs), spec.num_params):
        raise ValueError(f"training state: params of shape {tuple(state.params.shape)} do not fit the population")
