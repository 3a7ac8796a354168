"""Population training: M networks, each with its own configuration, trained at once with ``torch.func``.

Every step computes all networks' gradients in one vmapped call (:mod:`symzoo.zoo.step`) on each network's
own batch and dropout masks (:mod:`symzoo.zoo.rng`), then updates each network with its own optimizer,
learning rate and L2 coefficient (:mod:`symzoo.zoo.optim`). Because every draw depends on the network's
own seed only, training a network inside a population of any size gives the result of training it alone,
and a run resumed from a saved :class:`symzoo.zoo.state.TrainState` repeats the uninterrupted run bit for
bit (on the CPU).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import polars as pl
import torch
from tqdm import tqdm

from symzoo.nets.functional import evaluate
from symzoo.nets.spec import NetSpec
from symzoo.zoo.optim import BatchedOptimizers, OptimizerOrder
from symzoo.zoo.rng import CounterRNG
from symzoo.zoo.sample import check_configs
from symzoo.zoo.state import DATA_KEYS, METRIC_COLUMNS, TrainSettings, TrainState, configs_dict, initial_state
from symzoo.zoo.step import build_step

log = logging.getLogger(__name__)


def _check_data(spec: NetSpec, data: Mapping, device: torch.device) -> dict[str, torch.Tensor]:
    """The six data arrays, checked, as contiguous float32 images / int64 labels on ``device``."""
    out = {}
    for key in DATA_KEYS:
        if key not in data:
            raise ValueError(f"data: missing {key!r}")
        value = torch.as_tensor(data[key])
        if key.startswith("x"):
            if value.ndim != 4 or tuple(value.shape[1:]) != spec.input_shape:
                raise ValueError(f"data: {key!r} has shape {tuple(value.shape)}, expected (N, *{spec.input_shape})")
            value = value.to(device, torch.float32).contiguous()
        else:
            if value.ndim != 1 or value.is_floating_point():
                raise ValueError(f"data: {key!r} must be 1-d integer labels, got {value.dtype} {tuple(value.shape)}")
            value = value.to(device, torch.int64).contiguous()
        out[key] = value
    for split in ("train", "val", "test"):
        if len(out[f"x_{split}"]) != len(out[f"y_{split}"]):
            raise ValueError(f"data: x_{split} and y_{split} have different lengths")
        if len(out[f"x_{split}"]) == 0:
            raise ValueError(f"data: x_{split} is empty")
    return out


def _check_state(state: TrainState, spec: NetSpec, configs: pl.DataFrame) -> None:
    """Raise ``ValueError`` if ``state`` is not of this population (a caller's mistake; a saved state of another
    run never gets here: :func:`symzoo.zoo.state.load_state` removes it)."""
    for name, values in configs_dict(configs).items():
        if state.configs.get(name) != values:
            raise ValueError(f"training state: configs column {name!r} differs from this run's configs")
    if tuple(state.params.shape) != (len(configs), spec.num_params):
        raise ValueError(f"training state: params of shape {tuple(state.params.shape)} do not fit the population")


def _record(
    state: TrainState, spec: NetSpec, params: torch.Tensor, data: dict, settings: TrainSettings, epoch: int
) -> None:
    """Keep ``params`` (config order) as checkpoint ``epoch`` with its train/val/test metrics."""
    results = {}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(spec, params, data[f"x_{split}"], data[f"y_{split}"], batch_size=settings.eval_batch_size)
        results[f"{split}_loss"], results[f"{split}_accuracy"] = loss.tolist(), acc.tolist()
    state.checkpoints[epoch] = params.detach().to("cpu", copy=True)
    state.metrics = [r for r in state.metrics if r["epoch"] != epoch]
    for m, rid in enumerate(state.run_ids):
        state.metrics.append({"run_id": rid, "epoch": epoch} | {c: float(results[c][m]) for c in METRIC_COLUMNS})


def train_population(
    spec: NetSpec,
    configs: pl.DataFrame,
    data: Mapping[str, torch.Tensor],
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    progress: bool = True,
    state: TrainState | None = None,
    on_epoch: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train the networks ``configs`` describes (see :mod:`symzoo.zoo.sample`) together on ``data``.

    ``data``: x_train, y_train, x_val, y_val, x_test, y_test (images (N, C, H, W), int labels).
    ``state``: continue a run (e.g. from :func:`symzoo.zoo.state.load_state`) instead of starting afresh.
    ``on_epoch(state)``: called after every epoch with the up-to-date state (e.g. to save it).
    Returns the final state (``state``, updated in place, if given): ``state.params``, ``state.checkpoints``
    (epoch → params (M, P)), ``state.metrics_frame()``.
    Diverging networks are not an error: their parameters turn non-finite and stay so.
    """
    check_configs(configs)
    device = torch.device(device)
    data = _check_data(spec, data, device)
    n_train, m_total = len(data["x_train"]), len(configs)
    if state is None:
        state = initial_state(spec, configs)
    else:
        _check_state(state, spec, configs)
    if state.epoch == 0 and 0 in settings.checkpoints and 0 not in state.checkpoints:
        _record(state, spec, state.params.to(device), data, settings, 0)
    if state.epoch >= settings.epochs or m_total == 0:
        return state

    # Work in optimizer order (each kind's rows contiguous), on the device; `order` maps rows back.
    order = OptimizerOrder(configs["optimizer"].to_list(), device)
    work = configs[order.rows, :]
    theta = order.to_optimizer(state.params)
    exp_avg, exp_avg_sq = order.to_optimizer(state.exp_avg), order.to_optimizer(state.exp_avg_sq)
    lr = torch.tensor(work["learning_rate"].to_list(), dtype=torch.float64)
    opt = BatchedOptimizers(order.kinds, lr, theta, exp_avg, exp_avg_sq)
    l2 = torch.tensor(work["l2"].to_list(), dtype=torch.float32, device=device)
    rng = CounterRNG.for_configs(spec, work, n_train, settings.batch_size, device)
    use_dropout, use_l2 = bool((work["dropout"] > 0).any()), bool((work["l2"] > 0).any())
    step_fn = build_step(
        spec, m_total, settings.batch_size, use_dropout, use_l2, device, settings.compile, settings.trace, settings.l1
    )

    x_train, y_train = data["x_train"], data["y_train"]
    b, steps = settings.batch_size, rng.steps_per_epoch
    # Batches are gathered a few steps at a time (one index op, small enough to stay in cache), dropout
    # masks for more steps at a time (fewer, larger hashing ops).
    data_chunk = max(1, (1 << 18) // (m_total * b * math.prod(spec.input_shape)))
    mask_chunk = max(1, (1 << 21) // (m_total * b * sum(math.prod(s) for s in spec.hidden_shapes())))

    def sync() -> None:
        state.params = order.to_configs(theta).cpu()
        state.exp_avg, state.exp_avg_sq = order.to_configs(exp_avg).cpu(), order.to_configs(exp_avg_sq).cpu()

    bar = tqdm(
        range(state.epoch + 1, settings.epochs + 1), desc="zoo train", unit="epoch", disable=None if progress else True
    )
    for epoch in bar:
        indices = rng.epoch_indices(epoch).transpose(0, 1)  # (steps, M, B)
        ce_sum = torch.zeros(m_total, device=device)
        masks: list[torch.Tensor] = []
        for step in range(steps):
            k = step % data_chunk
            if k == 0:
                ids = indices[step : step + data_chunk].flatten()
                xs = x_train.index_select(0, ids).view(-1, m_total, b, *spec.input_shape)
                ys = y_train.index_select(0, ids).view(-1, m_total, b)
            if use_dropout and step % mask_chunk == 0:
                masks = rng.masks(epoch, step, min(steps, step + mask_chunk))
            grads, ce = step_fn(theta, xs[k], ys[k], l2, *[mask[step % mask_chunk] for mask in masks])
            state.step += 1
            opt.step(grads, state.step)
            ce_sum += ce
        state.epoch = epoch
        mean_loss = torch.nanmean(ce_sum / steps).item()
        finite = int(torch.isfinite(theta).all(dim=1).sum())
        log.info(
            "epoch %d/%d: mean train loss %.4f (%d/%d networks finite)",
            epoch,
            settings.epochs,
            mean_loss,
            finite,
            m_total,
        )
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        if epoch in settings.checkpoints:
            _record(state, spec, order.to_configs(theta), data, settings, epoch)
        if on_epoch is not None or epoch == settings.epochs:
            sync()
        if on_epoch is not None:
            on_epoch(state)
    return state


def population_bytes(spec: NetSpec, networks: int, settings: TrainSettings) -> int:
    """Bytes a population of ``networks`` trains in: parameters, gradients, two optimizer moments and every
    recorded checkpoint, plus a step's activations (kept for the backward pass) and an evaluation pass's."""
    params = networks * spec.num_params * 4 * (4 + len(settings.checkpoints))
    per_image = sum(math.prod(s) for s in spec.hidden_shapes()) + spec.num_classes + math.prod(spec.input_shape)
    step = networks * settings.batch_size * per_image * 4 * 3
    evaluation = networks * min(settings.eval_batch_size, 4096) * per_image * 4
    return params + step + evaluation
