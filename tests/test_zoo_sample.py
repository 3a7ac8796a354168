"""Configuration sampling and initialisation of generated zoos."""

import math

import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import SamplingRanges, init_params, sample_configs
from tests.fixtures.zoo import ranges

DEFAULTS = ranges()


def test_sample_configs_is_deterministic_and_independent_of_n_and_sharding():
    full = sample_configs(10, DEFAULTS, seed=7)
    assert full.equals(sample_configs(10, DEFAULTS, seed=7))
    shards = pl.concat([sample_configs(4, DEFAULTS, seed=7), sample_configs(6, DEFAULTS, seed=7, first_index=4)])
    assert shards.equals(full)
    assert sample_configs(3, DEFAULTS, seed=7).equals(full.head(3))
    assert full["run_id"].to_list() == [f"run-{i:06d}" for i in range(10)]
    assert full["seed"].n_unique() == 10 and full.schema["seed"] == pl.Int64
    assert not full.equals(sample_configs(10, DEFAULTS, seed=8))


def test_sampled_values_lie_in_their_ranges():
    chosen = ranges(optimizers=["adam", "sgd"], learning_rate=[1e-3, 1e-2], inits=["normal"], dropout=[0, 0])
    cfg = sample_configs(200, chosen, seed=1)
    assert set(cfg["optimizer"]) == {"adam", "sgd"} and set(cfg["init"]) == {"normal"}
    assert cfg["learning_rate"].min() >= 1e-3 and cfg["learning_rate"].max() <= 1e-2
    assert (cfg["dropout"] == 0).all()
    for key in ("l2", "init_std", "train_fraction"):
        lo, hi = getattr(DEFAULTS, key)
        assert lo <= cfg[key].min() and cfg[key].max() <= hi
    # log-uniform: about half the draws below the geometric midpoint
    assert 0.35 < (cfg["l2"] < math.sqrt(1e-8 * 1e-2)).mean() < 0.65


def test_the_defaults_are_the_schemas():
    assert SamplingRanges.from_options(config.validate({}, "sampling")) == DEFAULTS
    assert DEFAULTS.optimizers == ("sgd", "adam", "rmsprop") and DEFAULTS.learning_rate == (5e-4, 5e-2)


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"init_std": [-1.0, 1.0]}, "init_std"),
        ({"dropout": [0.1, 1.0]}, "dropout"),
        ({"train_fraction": [0.5, 1.5]}, "train_fraction"),
        ({"optimizers": ["sgd", "lbfgs"]}, "optimizers"),
        ({"inits": ["orthogonal"]}, "inits"),
        ({"momentum": [0.9, 0.9]}, "momentum"),
        ({"learning_rate": 0.01}, "learning_rate"),
    ],
)
def test_bad_ranges_are_rejected_by_the_schema_by_key(bad, key):
    with pytest.raises(config.ConfigError, match=key):
        ranges(**bad)


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"learning_rate": [1e-2, 1e-3]}, "learning_rate"),  # lo > hi
        ({"l2": [0.0, 1e-2]}, "l2"),  # log-uniform from 0
    ],
)
def test_ranges_the_schema_cannot_judge_are_rejected_by_key(bad, key):
    with pytest.raises(ValueError, match=key):
        ranges(**bad)


def test_init_params_follows_the_scheme_per_network():
    spec = NetSpec("cnn", (8, 32, 32), (64, 10), 10, "relu")
    cfg = sample_configs(3, DEFAULTS, seed=0).with_columns(
        init=pl.Series(["xavier_normal", "he_normal", "normal"]), init_std=pl.Series([0.1, 0.1, 0.05])
    )
    theta = init_params(spec, cfg)
    w = spec.tensor(1, "weight")  # conv 64 -> 10, 3x3: fan_in 576, fan_out 90
    stds = theta[:, w.offset : w.stop].std(dim=1)
    expected = [math.sqrt(2 / (576 + 90)), math.sqrt(2 / 576), 0.05]
    for got, want in zip(stds.tolist(), expected, strict=True):
        assert got == pytest.approx(want, rel=0.05)
    for t in spec.layout:
        if t.name.endswith("bias"):
            assert (theta[:, t.offset : t.stop] == 0).all()
    assert torch.equal(init_params(spec, cfg[1:2])[0], theta[1])
