"""``bench_zoo_train``: zoo-generation throughput, networks x epochs per second, three ways side by side.

On the Small MLP Zoo shape (64 → 48 → 32 → 16 → 10, tanh, 5,386 parameters), random images and labels,
plain SGD (one learning rate for all), batch 32, no dropout and no L2, every network its own batch order:

- ``vmap``: :func:`symzoo.zoo.train.train_population` (traced ``vmap(grad_and_value)``, batched
  optimizer), the real thing including its per-epoch shuffles, with the step already traced;
- ``sequential``: one ``nn.Sequential`` of ``Linear`` / ``Tanh`` per network with ``torch.optim.SGD``,
  trained one after the other (the loop a zoo is usually generated with);
- ``bound``: a hand-written trainer for all networks at once: ``torch.baddbmm`` forward, manual backward,
  the SGD update fused into the weight-gradient ``baddbmm_``; the speed a batched trainer can reach.

Each measurement is repeated ``repeats`` times, the three interleaved so that they see the same machine
load, and the fastest run of each counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from symzoo.bench.timing import timed
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import SamplingRanges, sample_configs
from symzoo.zoo.state import TrainSettings
from symzoo.zoo.step import build_step
from symzoo.zoo.train import train_population

MLP_ZOO_SPEC = NetSpec("mlp", (1, 8, 8), (48, 32, 16), 10, "tanh")
LEARNING_RATE = 0.01
BATCH = 32


def _data(samples: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    data = {}
    for split, n in (("train", samples), ("val", 256), ("test", 256)):
        data[f"x_{split}"] = torch.randn(n, *MLP_ZOO_SPEC.input_shape, generator=g).to(device)
        data[f"y_{split}"] = torch.randint(0, MLP_ZOO_SPEC.num_classes, (n,), generator=g).to(device)
    return data


def _configs(m: int) -> pl.DataFrame:
    """SGD, one learning rate, no dropout, no L2, the full train set: the same job for all three."""
    ranges = SamplingRanges(
        optimizers=("sgd",),
        learning_rate=(LEARNING_RATE, LEARNING_RATE),
        l2=(1e-8, 1e-8),
        dropout=(0.0, 0.0),
        inits=("he_normal",),
        init_std=(1e-3, 0.5),  # unused by he_normal
        train_fraction=(1.0, 1.0),
    )
    return sample_configs(m, ranges, seed=0).with_columns(l2=pl.lit(0.0))


def _vmap_run(m: int, data: dict, epochs: int, device: torch.device, compile: bool) -> Callable[[], object]:
    configs = _configs(m)
    settings = TrainSettings(epochs=epochs, checkpoints=(), batch_size=BATCH, compile=compile)
    build_step(MLP_ZOO_SPEC, m, BATCH, False, False, device, compile)  # trace once, outside the timing
    return lambda: train_population(MLP_ZOO_SPEC, configs, data, settings, device, progress=False)


def _sequential_run(m: int, data: dict, epochs: int, device: torch.device, max_steps: int) -> tuple[Callable, float]:
    """A run over min(m, 2) networks and ``max_steps`` steps each; returns it and the factor to a full run.

    The per-step cost of a small nn.Module loop does not depend on which network or step it is, so the
    time of a slice extrapolates linearly to m networks x epochs x steps (said in the report).
    """
    x, y = data["x_train"], data["y_train"]
    steps = len(x) // BATCH
    nets, timed_steps = min(m, 2), min(max_steps, steps * epochs)

    def run() -> None:
        for net_index in range(nets):
            torch.manual_seed(net_index)
            sizes = (math.prod(MLP_ZOO_SPEC.input_shape), *MLP_ZOO_SPEC.widths, MLP_ZOO_SPEC.num_classes)
            layers: list[nn.Module] = [nn.Flatten()]
            for i in range(len(sizes) - 1):
                layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.Tanh()]
            net = nn.Sequential(*layers[:-1]).to(device)
            opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
            order = torch.randperm(len(x), device=device)
            for s in range(timed_steps):
                idx = order[(s % steps) * BATCH : (s % steps + 1) * BATCH]
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    return run, (m * epochs * steps) / (nets * timed_steps)


def _bound_run(m: int, data: dict, epochs: int, device: torch.device) -> Callable[[], object]:
    """All networks at once by hand: weights (M, in, out), baddbmm forward, manual backward, fused SGD."""
    x, y = data["x_train"].flatten(1), data["y_train"]
    n, steps = len(x), len(x) // BATCH
    sizes = (x.shape[1], *MLP_ZOO_SPEC.widths, MLP_ZOO_SPEC.num_classes)
    g = torch.Generator().manual_seed(0)

    def run() -> None:
        ws = [(torch.randn(m, a, b, generator=g) * math.sqrt(2 / a)).to(device) for a, b in zip(sizes, sizes[1:])]
        bs = [torch.zeros(m, 1, b, device=device) for b in sizes[1:]]
        minus_ones = torch.full((m, BATCH, 1), -1.0, device=device)
        for _ in range(epochs):
            order = torch.rand(m, n, device=device).argsort(dim=1)[:, : steps * BATCH]
            order = order.view(m, steps, BATCH).transpose(0, 1).contiguous()
            for s in range(steps):
                ids = order[s].flatten()
                h, yb = x.index_select(0, ids).view(m, BATCH, -1), y.index_select(0, ids).view(m, BATCH, 1)
                acts = [h]
                for i, (w, b) in enumerate(zip(ws, bs)):
                    h = torch.baddbmm(b, h, w)
                    if i < len(ws) - 1:
                        h = h.tanh_()
                    acts.append(h)
                d = torch.softmax(h, dim=-1).scatter_add_(2, yb, minus_ones).mul_(1 / BATCH)
                for i in range(len(ws) - 1, -1, -1):
                    back = torch.bmm(d, ws[i].transpose(1, 2)) if i > 0 else None
                    ws[i].baddbmm_(acts[i].transpose(1, 2), d, alpha=-LEARNING_RATE)
                    bs[i].add_(d.sum(1, keepdim=True), alpha=-LEARNING_RATE)
                    if back is not None:
                        d = back.mul_(1 - acts[i].square())

    return run


def bench_zoo_train(
    ms: tuple[int, ...] = (40, 200),
    samples: int = 50_000,
    epochs: int = 1,
    device: str | torch.device = "cpu",
    repeats: int = 3,
    sequential_steps: int = 300,
    compile: bool = False,
) -> list[dict]:
    """Networks x epochs per second of the three trainers for each population size in ``ms``.

    Returns one dict per M: M, sequential_nps, vmap_nps, bound_nps, vmap_over_sequential, bound_over_vmap.
    ``sequential`` is timed on 2 networks x ``sequential_steps`` steps and extrapolated linearly; the other
    two time full epochs. Ratios come from measurements interleaved in this one run. ``compile``: time
    ``train_population`` with ``TrainSettings.compile`` (its one-off compilation is not timed).
    """
    device = torch.device(device)
    data = _data(samples, device)
    rows = []
    for m in ms:
        vmap_run = _vmap_run(m, data, epochs, device, compile)
        bound_run = _bound_run(m, data, epochs, device)
        seq_run, seq_factor = _sequential_run(m, data, epochs, device, sequential_steps)
        vmap_run(), bound_run()  # warm-up: first calls pay one-off costs (allocator, compilation)
        best = {"vmap": math.inf, "bound": math.inf, "sequential": math.inf}
        for _ in range(repeats):
            best["vmap"] = min(best["vmap"], timed(vmap_run, device))
            best["bound"] = min(best["bound"], timed(bound_run, device))
            best["sequential"] = min(best["sequential"], timed(seq_run, device) * seq_factor)
        nps = {k: m * epochs / v for k, v in best.items()}
        rows.append(
            {
                "M": m,
                "sequential_nps": nps["sequential"],
                "vmap_nps": nps["vmap"],
                "bound_nps": nps["bound"],
                "vmap_over_sequential": nps["vmap"] / nps["sequential"],
                "bound_over_vmap": nps["bound"] / nps["vmap"],
            }
        )
    return rows
