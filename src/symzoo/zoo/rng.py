"""Counter-based randomness of population training: train subsets, per-epoch batch orders, dropout masks.

Every draw is a splitmix64 hash of (network seed, purpose, epoch, step, layer, element) computed in torch,
so a network's train subset, batch order and dropout masks depend on its own seed only: training a network
inside a population of any size gives the result of training it alone, and resuming a run at any epoch
repeats the uninterrupted run bit for bit (there is no generator state to save).

Epochs: every network takes ``n_train // batch_size`` steps per epoch (the same for all, so a checkpoint
compares networks after equal work). Network ``m`` draws its batches from consecutive reshuffles of its own
subset of ``round(train_fraction * n_train)`` images: reshuffle ``c`` of epoch ``e`` is a permutation keyed
by (seed, e, c), used in order and cut where the epoch ends (so with ``train_fraction`` 1 an epoch is one
shuffle with the last partial batch dropped).
"""

from __future__ import annotations

import math

import polars as pl
import torch

from symzoo.nets.spec import NetSpec


def _i64(value: int) -> int:
    """A 64-bit constant as the signed int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GAMMA = _i64(0x9E3779B97F4A7C15)
_MIX1 = _i64(0xBF58476D1CE4E5B9)
_MIX2 = _i64(0x94D049BB133111EB)
_INT63 = (1 << 63) - 1
_SUBSET, _SHUFFLE, _DROPOUT = 1, 2, 3


_CHUNK = 1 << 16  # int64 elements hashed at a time on the CPU: the dozen passes stay in cache


def _fmix_(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser, in place on int64 ``z``.

    torch's int64 add and multiply wrap modulo 2**64 (CPU and CUDA), which is the unsigned arithmetic the
    hash needs; ``>>`` is arithmetic, so each shift is masked to make it logical.
    """
    if z.device.type == "cpu" and z.numel() > _CHUNK and z.is_contiguous():
        for part in z.view(-1).split(_CHUNK):
            _fmix_(part)
        return z
    t = z >> 30
    z ^= t.bitwise_and_((1 << 34) - 1)
    z *= _MIX1
    t = z >> 27
    z ^= t.bitwise_and_((1 << 37) - 1)
    z *= _MIX2
    t = z >> 31
    z ^= t.bitwise_and_((1 << 33) - 1)
    return z


def _derive(key: torch.Tensor, counter: int | torch.Tensor) -> torch.Tensor:
    """A new key from ``key`` and a counter (an int >= 0 or an int64 tensor broadcasting with ``key``)."""
    if isinstance(counter, torch.Tensor):
        return _fmix_(key + (counter + 1) * _GAMMA)
    return _fmix_(key + _i64((counter + 1) * (_GAMMA % (1 << 64)) % (1 << 64)))


def _stream(key: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` hashes per key: int64 of shape (*key.shape, n) (the splitmix64 sequence seeded with ``key``)."""
    ramp = (torch.arange(1, n + 1, dtype=torch.int64, device=key.device) * _GAMMA).expand(*key.shape, n)
    return _fmix_(key.unsqueeze(-1) + ramp)


def _uniform(key: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` uniform floats in [0, 1) per key, float32 (*key.shape, n): two 24-bit draws per 64-bit hash."""
    h = _stream(key, (n + 1) // 2)
    hi = (h >> 40).bitwise_and_((1 << 24) - 1)
    lo = h.bitwise_right_shift_(8).bitwise_and_((1 << 24) - 1)
    u = torch.stack((hi, lo), dim=-1).flatten(-2)[..., :n]
    return u.to(torch.float32).mul_(2.0**-24)


def _subset_size(fraction: float, n_train: int) -> int:
    return min(n_train, max(1, math.floor(fraction * n_train + 0.5)))


class CounterRNG:
    """The random draws of a population's training (train subsets, per-epoch batch order, dropout masks).

    Row ``m`` of every output depends only on ``seeds[m]``, ``dropout[m]``, ``train_fraction[m]`` and
    the shared sizes (``n_train``, ``batch_size``, the spec), never on the other rows.
    Epochs are numbered from 1 (epoch 0 is the initialisation); steps from 0.
    """

    def __init__(
        self,
        spec: NetSpec,
        seeds: torch.Tensor,
        dropout: torch.Tensor,
        train_fraction: list[float],
        n_train: int,
        batch_size: int,
        device: str | torch.device = "cpu",
        rows_per_sort: int = 16,
    ) -> None:
        if n_train < batch_size:
            raise ValueError(f"x_train has {n_train} images, fewer than one batch of {batch_size}")
        self.spec, self.device = spec, torch.device(device)
        self.n_train, self.batch_size = int(n_train), int(batch_size)
        self.steps_per_epoch = self.n_train // self.batch_size
        self.seeds = seeds.to(self.device, torch.int64)
        dropout = dropout.to(self.device, torch.float64)
        self.keep = (1 - dropout).to(torch.float32)
        self.scale = (1 / (1 - dropout)).to(torch.float32)
        self.sizes = torch.tensor([_subset_size(f, self.n_train) for f in train_fraction], device=self.device)
        self.rows_per_sort = rows_per_sort
        self.subset = self._subsets()

    @classmethod
    def for_configs(
        cls, spec: NetSpec, configs: pl.DataFrame, n_train: int, batch_size: int, device: str | torch.device = "cpu"
    ) -> CounterRNG:
        """The draws of the networks ``configs`` describes (columns seed, dropout, train_fraction)."""
        return cls(
            spec,
            torch.tensor(configs["seed"].to_list(), dtype=torch.int64),
            torch.tensor(configs["dropout"].to_list(), dtype=torch.float64),
            configs["train_fraction"].to_list(),
            n_train,
            batch_size,
            device,
        )

    def __len__(self) -> int:
        return len(self.seeds)

    def _key(self, *counters: int) -> torch.Tensor:
        key = _fmix_(self.seeds + _GAMMA)
        for counter in counters:
            key = _derive(key, counter)
        return key

    def _subsets(self) -> torch.Tensor:
        """(M, n_max): row m's first ``sizes[m]`` entries are its train images (all of them, in order, for
        a train fraction of 1; else a random subset, in a random order)."""
        n_max = int(self.sizes.max()) if len(self) else 0
        subset = torch.arange(n_max, device=self.device).repeat(len(self), 1)
        rows = (self.sizes < self.n_train).nonzero().flatten()
        keys = self._key(_SUBSET)[rows]
        for r in range(0, len(rows), self.rows_per_sort):
            h = _stream(keys[r : r + self.rows_per_sort], self.n_train).bitwise_and_(_INT63)
            subset[rows[r : r + self.rows_per_sort]] = torch.sort(h, dim=-1, stable=True).indices[:, :n_max]
        return subset

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """Indices into x_train (M, steps_per_epoch, batch_size) of every network's batches in ``epoch``."""
        need = self.steps_per_epoch * self.batch_size
        n_max = self.subset.shape[1]
        cycles = -(-need // int(self.sizes.min())) if len(self) else 0
        pos = torch.arange(need, device=self.device)
        keys = _derive(self._key(_SHUFFLE, epoch).unsqueeze(-1), torch.arange(cycles, device=self.device))
        out = []
        for r in range(0, len(self), self.rows_per_sort):
            size = self.sizes[r : r + self.rows_per_sort, None]
            h = _stream(keys[r : r + self.rows_per_sort], n_max).bitwise_and_(_INT63)  # (rows, cycles, n_max)
            h.masked_fill_(torch.arange(n_max, device=self.device) >= size[..., None], _INT63)
            perm = torch.sort(h, dim=-1, stable=True).indices.flatten(1)  # reshuffle c at [c * n_max, ...)
            slot = perm.gather(1, (pos // size) * n_max + pos % size)
            out.append(self.subset[r : r + self.rows_per_sort].gather(1, slot))
        return torch.cat(out).view(len(self), self.steps_per_epoch, self.batch_size)

    def masks(self, epoch: int, start: int, stop: int) -> list[torch.Tensor]:
        """Dropout masks of steps ``start .. stop - 1`` of ``epoch``: per hidden layer (K, M, B, *shape).

        Keep with probability 1 - rate (a 24-bit uniform below it), scaled by 1 / (1 - rate).
        """
        steps = torch.arange(start, stop, device=self.device)
        key = _derive(self._key(_DROPOUT, epoch).unsqueeze(0), steps.unsqueeze(1))  # (K, M)
        out = []
        for layer, shape in enumerate(self.spec.hidden_shapes()):
            n = self.batch_size * math.prod(shape)
            keep = _uniform(_derive(key, layer), n) < self.keep[:, None]
            mask = keep.to(torch.float32).mul_(self.scale[:, None])
            out.append(mask.view(stop - start, len(self), self.batch_size, *shape))
        return out


def network_batches(
    spec: NetSpec,
    configs: pl.DataFrame,
    n_train: int,
    batch_size: int,
    epoch: int,
    step: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """What each network of ``configs`` trains on at (``epoch`` >= 1, ``step``): the indices into
    x_train (M, B) and the dropout masks, one per hidden layer (M, B, *shape), scaled by 1 / (1 - rate).

    Exactly what :func:`symzoo.zoo.train.train_population` uses, for any population the networks are part of.
    """
    rng = CounterRNG.for_configs(spec, configs, n_train, batch_size, device)
    if not 0 <= step < rng.steps_per_epoch or epoch < 1:
        raise ValueError(f"epoch must be >= 1 and step in [0, {rng.steps_per_epoch}), got {epoch}, {step}")
    indices = rng.epoch_indices(epoch)[:, step]
    return indices, [m[0] for m in rng.masks(epoch, step, step + 1)]
