"""What a population's training is and where it has got to: its settings, its state, and resuming a state.

:class:`TrainSettings` says how a population trains; :class:`TrainState` holds everything needed to continue
(parameters, optimizer moments, counters, the checkpoints and metrics recorded so far). A state is saved
with the project's resume helper :mod:`symzoo.checkpoint` under a :func:`fingerprint` of everything it
depends on, and its policy: a saved state of another run (other networks, images, settings, an older
format) is removed with a warning and training starts afresh; a state of this run is resumed, and the
resumed run repeats the uninterrupted one bit for bit (on the CPU; see :mod:`symzoo.zoo.rng`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

from symzoo import checkpoint
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import CONFIG_SCHEMA, init_params

CHECKPOINT_KIND = "zoo"
STATE_VERSION = 2  # 1: a bare torch.save of TrainState, before symzoo.checkpoint

METRIC_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
DATA_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class TrainSettings:
    """How a population trains.

    ``epochs`` to train; ``checkpoints``: epochs (0 = the initialisation) whose parameters and metrics are
    kept; ``batch_size`` of every step; ``eval_batch_size``: images per evaluation batch (memory only).
    ``trace``: run the training step as a traced and rewritten graph (:mod:`symzoo.zoo.step`; faster, the
    same arithmetic up to float rounding); False: eager ``vmap``. ``compile``: also ``torch.compile`` the
    step (one-off cost of about half a minute per shape, faster steps; for long runs). ``l1``: a coefficient of
    the L1 norm of every network's parameters added to its loss (0 for a zoo; the fine-tuning baseline's objective).
    """

    epochs: int
    checkpoints: tuple[int, ...]
    batch_size: int
    eval_batch_size: int = 2048
    compile: bool = False
    trace: bool = True
    l1: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoints", tuple(sorted({int(c) for c in self.checkpoints})))
        if self.epochs < 0:
            raise ValueError(f"train settings: epochs must be >= 0, got {self.epochs}")
        if any(not 0 <= c <= self.epochs for c in self.checkpoints):
            raise ValueError(f"train settings: checkpoints {self.checkpoints} must lie in [0, epochs={self.epochs}]")
        if self.l1 < 0:
            raise ValueError(f"train settings: l1 must be >= 0, got {self.l1}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"train settings: batch sizes must be >= 1, got {self.batch_size}, {self.eval_batch_size}")


@dataclass
class TrainState:
    """Everything needed to continue training a population (all tensors on the CPU, rows in config order).

    ``configs``: the networks' configurations, column → values (:func:`configs_dict`).
    ``epoch``/``step``: epochs / optimizer steps done. ``params``, ``exp_avg``, ``exp_avg_sq`` (M, P):
    parameters and optimizer moments. ``checkpoints``: epoch → params (M, P). ``metrics``: one row per
    (network, checkpoint epoch).
    """

    configs: dict[str, list]
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

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors, numbers, strings, lists and dicts (``torch.load(weights_only=True)`` reads them)."""
        return {
            "configs": self.configs,
            "epoch": self.epoch,
            "step": self.step,
            "params": self.params,
            "exp_avg": self.exp_avg,
            "exp_avg_sq": self.exp_avg_sq,
            "checkpoints": dict(self.checkpoints),
            "metrics": list(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainState:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def configs_dict(configs: pl.DataFrame) -> dict[str, list]:
    """The configuration columns of ``configs`` (:data:`symzoo.zoo.sample.CONFIG_SCHEMA`) as lists."""
    return {name: configs[name].to_list() for name in CONFIG_SCHEMA}


def initial_state(spec: NetSpec, configs: pl.DataFrame) -> TrainState:
    """A population at epoch 0: parameters from :func:`symzoo.zoo.sample.init_params`, fresh optimizers."""
    params = init_params(spec, configs)
    return TrainState(
        configs=configs_dict(configs),
        epoch=0,
        step=0,
        params=params,
        exp_avg=torch.zeros_like(params),
        exp_avg_sq=torch.zeros_like(params),
    )


def fingerprint(
    spec: NetSpec, configs: pl.DataFrame, data: Mapping[str, torch.Tensor | np.ndarray], settings: TrainSettings
) -> dict[str, Any]:
    """What a saved state must share with a run to be resumed by it.

    The spec, the networks' configurations, the six data arrays (digests), the batch sizes and the
    checkpoint epochs. Not ``epochs`` (a state after epoch e is the same for any longer run), nor the device
    or the step's execution path (``trace``, ``compile``), which change float rounding only.
    """
    configs_json = json.dumps(configs_dict(configs))
    parts: list[bytes | str] = []
    for key in DATA_KEYS:
        array = np.ascontiguousarray(torch.as_tensor(data[key]).cpu().numpy())
        parts += [f"{key} {array.dtype} {array.shape}", array.tobytes()]
    return {
        "spec": spec.to_dict(),
        "configs": checkpoint.digest([configs_json]),
        "data": checkpoint.digest(parts),
        "batch_size": settings.batch_size,
        "eval_batch_size": settings.eval_batch_size,
        "checkpoints": list(settings.checkpoints),
        **({"l1": settings.l1} if settings.l1 else {}),
    }


def save_state(path: str | os.PathLike, state: TrainState, fingerprint: dict[str, Any]) -> None:
    """Write ``state`` as a ``zoo`` checkpoint (atomically: a reader sees the old file or the new one)."""
    checkpoint.save(path, CHECKPOINT_KIND, STATE_VERSION, fingerprint, state.to_dict())


def load_state(path: str | os.PathLike, fingerprint: dict[str, Any]) -> TrainState | None:
    """The state saved at ``path`` if it belongs to the run with ``fingerprint``; else None.

    A file of another run (or unreadable, or of an older format) is removed with a warning, so the run starts
    afresh (:func:`symzoo.checkpoint.load`).
    """
    saved = checkpoint.load(path, CHECKPOINT_KIND, STATE_VERSION, fingerprint)
    return None if saved is None else TrainState.from_dict(saved)
