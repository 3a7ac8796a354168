"""Hyper-parameter sampling and initialisation of a generated zoo.

Every network gets its own configuration, drawn from its own numpy ``Generator`` seeded with
``(seed, index)``: network ``i``'s configuration depends on the zoo seed and on ``i`` only, never on
how many networks are sampled or on the shard (``first_index``) they are sampled in. The ranges
follow Unterthiner et al. 2020 (Small CNN Zoo): optimizer uniform over {SGD, Adam, RMSprop},
learning rate, L2 coefficient and init std log-uniform, dropout and train fraction uniform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import polars as pl
import torch

from symzoo.nets.spec import NetSpec

OPTIMIZERS = ("sgd", "adam", "rmsprop")
INITS = ("xavier_normal", "he_normal", "normal")

RANGES = ("learning_rate", "l2", "dropout", "init_std", "train_fraction")
"""The [lo, hi] ranges of :class:`SamplingRanges` (the other fields are lists of choices)."""
LOG_UNIFORM = ("learning_rate", "l2", "init_std")

CONFIG_SCHEMA: dict[str, type[pl.DataType]] = {
    "run_id": pl.String,
    "seed": pl.Int64,
    "optimizer": pl.String,
    "learning_rate": pl.Float64,
    "l2": pl.Float64,
    "dropout": pl.Float64,
    "init": pl.String,
    "init_std": pl.Float64,
    "train_fraction": pl.Float64,
}


def run_id(index: int) -> str:
    """The run id of network ``index`` of a generated zoo."""
    return f"run-{index:06d}"


@dataclass(frozen=True)
class SamplingRanges:
    """Where each hyper-parameter is drawn from: the ``sampling`` section of a zoo, already validated.

    The config schema (``$defs/sampling``) is the one place the defaults and the allowed values live; build
    this with :meth:`from_options` from the validated section. The checks here are only those a JSON schema
    cannot state: ``lo <= hi``, and ``lo > 0`` for the log-uniform ranges (the schema allows 0).
    """

    optimizers: tuple[str, ...]
    learning_rate: tuple[float, float]  # log-uniform
    l2: tuple[float, float]  # log-uniform
    dropout: tuple[float, float]  # uniform
    inits: tuple[str, ...]
    init_std: tuple[float, float]  # log-uniform, used by the "normal" init
    train_fraction: tuple[float, float]  # uniform

    def __post_init__(self) -> None:
        for key in RANGES:
            lo, hi = getattr(self, key)
            if lo > hi:
                raise ValueError(f"sampling ranges: {key!r} needs lo <= hi, got [{lo}, {hi}]")
            if key in LOG_UNIFORM and lo <= 0:
                raise ValueError(f"sampling ranges: {key!r} is log-uniform and needs lo > 0, got [{lo}, {hi}]")

    @classmethod
    def from_options(cls, ranges: Mapping) -> SamplingRanges:
        """From a ``sampling`` section validated against the schema (every key present, defaults filled in)."""
        return cls(
            **{
                f.name: tuple(float(v) for v in ranges[f.name]) if f.name in RANGES else tuple(ranges[f.name])
                for f in fields(cls)
            }
        )


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_config(index: int, ranges: SamplingRanges, seed: int) -> dict:
    """The configuration of network ``index`` of the zoo with seed ``seed``: one row of :func:`sample_configs`."""
    if index < 0 or seed < 0:
        raise ValueError(f"seed and network index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng([int(seed), int(index)])
    # The draws happen in a fixed order, whatever the ranges, so each value depends on its own range only.
    net_seed = int(rng.integers(0, 2**62))  # fits int64 and leaves room for counter arithmetic
    optimizer = ranges.optimizers[int(rng.integers(len(ranges.optimizers)))]
    learning_rate = _log_uniform(rng, *ranges.learning_rate)
    l2 = _log_uniform(rng, *ranges.l2)
    dropout = float(rng.uniform(*ranges.dropout))
    init = ranges.inits[int(rng.integers(len(ranges.inits)))]
    init_std = _log_uniform(rng, *ranges.init_std)
    train_fraction = float(rng.uniform(*ranges.train_fraction))
    return {
        "run_id": run_id(index),
        "seed": net_seed,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "l2": l2,
        "dropout": dropout,
        "init": init,
        "init_std": init_std,
        "train_fraction": train_fraction,
    }


def sample_configs(n: int, ranges: SamplingRanges, seed: int, first_index: int = 0) -> pl.DataFrame:
    """Configurations of networks ``first_index .. first_index + n - 1``, one row each.

    Columns: run_id, seed (the network's own seed, Int64), optimizer, learning_rate, l2, dropout, init,
    init_std (used by the "normal" init), train_fraction.
    """
    if n < 0 or first_index < 0:
        raise ValueError(f"sample_configs: n and first_index must be >= 0, got n={n}, first_index={first_index}")
    rows = [sample_config(i, ranges, seed) for i in range(first_index, first_index + n)]
    return pl.DataFrame(rows, schema=CONFIG_SCHEMA)


def check_configs(configs: pl.DataFrame) -> None:
    """Raise ``ValueError`` naming the column if ``configs`` lacks a column or holds a bad value."""
    for name in CONFIG_SCHEMA:
        if name not in configs.columns:
            raise ValueError(f"configs: missing column {name!r}")
    if configs["run_id"].is_duplicated().any():
        raise ValueError("configs: 'run_id' values must be unique")
    for name, allowed in (("optimizer", OPTIMIZERS), ("init", INITS)):
        bad = sorted(set(configs[name].to_list()) - set(allowed))
        if bad:
            raise ValueError(f"configs: column {name!r} has unknown value(s) {bad}; allowed: {list(allowed)}")
    checks = {
        "learning_rate": pl.col("learning_rate") > 0,
        "l2": pl.col("l2") >= 0,
        "dropout": (pl.col("dropout") >= 0) & (pl.col("dropout") < 1),
        "init_std": pl.col("init_std") > 0,
        "train_fraction": (pl.col("train_fraction") > 0) & (pl.col("train_fraction") <= 1),
        "seed": pl.col("seed") >= 0,
    }
    for name, ok in checks.items():
        bad = configs.filter(~ok.fill_null(False))
        if len(bad):
            raise ValueError(f"configs: column {name!r} has an invalid value {bad[name][0]!r} ({bad['run_id'][0]})")


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel): the kernel area counts in both."""
    area = math.prod(shape[2:])
    return shape[1] * area, shape[0] * area


def init_std(scheme: str, shape: tuple[int, ...], std: float) -> float:
    """Standard deviation of the normal a weight of ``shape`` is drawn from under ``scheme``."""
    fan_in, fan_out = _fans(shape)
    if scheme == "xavier_normal":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "he_normal":
        return math.sqrt(2.0 / fan_in)
    if scheme == "normal":
        return float(std)
    raise ValueError(f"init: unknown scheme {scheme!r}; allowed: {list(INITS)}")


def init_params(spec: NetSpec, configs: pl.DataFrame) -> torch.Tensor:
    """Initial flat parameters (M, P) float32 of the networks ``configs`` describes, on the CPU.

    Weights are normal with the scheme's std (Glorot / He from the layout's fan-in and fan-out, conv
    kernels' area included, or ``init_std``), biases zero. Network ``m`` draws from a ``torch.Generator``
    seeded with its own ``seed``, so its parameters do not depend on the other rows.
    """
    for name in ("seed", "init", "init_std"):
        if name not in configs.columns:
            raise ValueError(f"configs: missing column {name!r}")
    theta = torch.zeros(len(configs), spec.num_params)
    weights = [t for t in spec.layout if t.name.endswith(".weight")]
    for m, (seed, scheme, std) in enumerate(configs.select("seed", "init", "init_std").iter_rows()):
        g = torch.Generator().manual_seed(int(seed))
        for t in weights:
            sigma = init_std(scheme, t.shape, std)
            theta[m, t.offset : t.stop] = torch.randn(t.size, generator=g) * sigma
    return theta
