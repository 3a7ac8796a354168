"""Population training: together equals alone equals torch.optim, per-network effects, checkpoints, divergence."""

import polars as pl
import pytest
import torch
import torch.nn.functional as F

from symzoo.bench.zoo_train import bench_zoo_train
from symzoo.nets.functional import forward
from symzoo.nets.spec import NetSpec
from symzoo.zoo.rng import network_batches
from symzoo.zoo.sample import init_params
from symzoo.zoo.state import TrainSettings
from symzoo.zoo.train import train_population
from tests.fixtures.zoo import BATCH, N_TRAIN, SPECS, make_data, population, settings, train


def reference(spec: NetSpec, cfg: pl.DataFrame, data: dict, epochs: int) -> torch.Tensor:
    """One network with torch.optim on a leaf tensor, fed the batches and masks of ``network_batches``."""
    (row,) = cfg.iter_rows(named=True)
    theta = init_params(spec, cfg)[0].clone().requires_grad_(True)
    optim = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[row["optimizer"]]
    opt = optim([theta], lr=row["learning_rate"])
    weights = [t for t in spec.layout if t.name.endswith("weight")]
    for epoch in range(1, epochs + 1):
        for step in range(N_TRAIN // BATCH):
            idx, masks = network_batches(spec, cfg, N_TRAIN, BATCH, epoch, step)
            logits = forward(spec, theta, data["x_train"][idx[0]], [m[0] for m in masks])
            penalty = sum(theta[t.offset : t.stop].square().sum() for t in weights)
            loss = F.cross_entropy(logits, data["y_train"][idx[0]]) + row["l2"] * penalty
            opt.zero_grad()
            loss.backward()
            opt.step()
    return theta.detach()


@pytest.mark.parametrize("name", SPECS)
def test_population_equals_alone_equals_torch_optim(name):
    spec, data = SPECS[name], make_data(SPECS[name])
    cfg = population(6)
    assert set(cfg["optimizer"]) == {"sgd", "adam", "rmsprop"} and (cfg["dropout"] > 0).all()
    together = train(spec, cfg, data)
    assert not torch.equal(together, init_params(spec, cfg))
    for j in range(6):
        alone = train(spec, cfg[j : j + 1], data)[0]
        torch.testing.assert_close(together[j], alone, atol=1e-5, rtol=0)
        torch.testing.assert_close(together[j], reference(spec, cfg[j : j + 1], data, 2), atol=1e-5, rtol=0)


def test_eager_vmap_trains_like_the_traced_step():
    spec, data = SPECS["cnn"], make_data(SPECS["cnn"])
    cfg = population(6)
    eager = TrainSettings(epochs=2, checkpoints=(), batch_size=BATCH, eval_batch_size=16, trace=False)
    together = train_population(spec, cfg, data, eager, progress=False).params
    torch.testing.assert_close(together, train(spec, cfg, data), atol=1e-5, rtol=0)


@pytest.mark.parametrize("column, value", [("dropout", 0.0), ("dropout", 0.35), ("l2", 0.0), ("l2", 0.05)])
def test_dropout_and_l2_change_exactly_their_network(column, value):
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg = population(6)
    base = train(spec, cfg, data)
    j = 4
    changed = cfg.with_columns(pl.when(pl.int_range(pl.len()) == j).then(value).otherwise(pl.col(column)).alias(column))
    moved = train(spec, changed, data)
    others = [i for i in range(6) if i != j]
    assert torch.equal(moved[others], base[others])
    assert (moved[j] - base[j]).abs().max() > 1e-6


def test_same_seed_same_zoo_other_seed_other_zoo():
    spec, data = SPECS["cnn"], make_data(SPECS["cnn"])
    cfg = population(6)
    assert torch.equal(train(spec, cfg, data), train(spec, cfg, data))
    reseeded = train(spec, cfg.with_columns(seed=pl.col("seed") + 1), data)
    assert ((reseeded - train(spec, cfg, data)).abs().amax(dim=1) > 1e-4).all()


def test_checkpoints_record_parameters_and_metrics_that_improve():
    spec = NetSpec("mlp", (1, 4, 4), (16,), 3, "tanh")
    data = make_data(spec, n_train=256, easy=True)
    cfg = population(3, learning_rate=[0.1, 0.01, 0.005], dropout=[0.0, 0.0, 0.1], l2=[1e-5, 1e-5, 1e-5])
    run = TrainSettings(epochs=4, checkpoints=(0, 2, 4), batch_size=16)
    state = train_population(spec, cfg, data, run, progress=False)
    metrics = state.metrics_frame()
    assert metrics.columns == [
        "run_id",
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
    ]
    assert metrics.schema["epoch"] == pl.Int64 and len(metrics) == 9
    assert sorted(state.checkpoints) == [0, 2, 4]
    epochs, params = state.checkpoint_params()
    assert epochs == [0, 2, 4] and params.shape == (3, 3, spec.num_params)
    assert torch.equal(params[0], init_params(spec, cfg)) and torch.equal(params[-1], state.params)
    start = metrics.filter(pl.col("epoch") == 0).sort("run_id")
    end = metrics.filter(pl.col("epoch") == 4).sort("run_id")
    assert (end["train_accuracy"] > start["train_accuracy"] + 0.2).all()
    assert (end["train_loss"] < start["train_loss"]).all()
    assert (end["test_accuracy"] > start["test_accuracy"]).all()


def test_a_diverging_network_does_not_stop_the_others():
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg = population(3, optimizer=["sgd", "sgd", "adam"], learning_rate=[1e30, 1e-2, 1e-2], init_std=[10.0] * 3)
    cfg = cfg.with_columns(init=pl.lit("normal"))
    state = train_population(spec, cfg, data, settings(2, (2,)), progress=False)
    finite = torch.isfinite(state.params).all(dim=1)
    assert finite.tolist() == [False, True, True]
    assert len(state.metrics_frame()) == 3


def test_bad_inputs_are_named():
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    with pytest.raises(ValueError, match="x_val"):
        train_population(spec, population(2), {k: v for k, v in data.items() if k != "x_val"}, settings())
    with pytest.raises(ValueError, match="optimizer"):
        train_population(spec, population(2, optimizer=["sgd", "lbfgs"]), data, settings())
    with pytest.raises(ValueError, match="checkpoints"):
        TrainSettings(epochs=2, checkpoints=(3,), batch_size=8)


def test_the_zoo_training_benchmark_reports_all_three_trainers():
    (row,) = bench_zoo_train(ms=(3,), samples=128, repeats=1, sequential_steps=4)
    assert set(row) == {"M", "sequential_nps", "vmap_nps", "bound_nps", "vmap_over_sequential", "bound_over_vmap"}
    assert row["M"] == 3 and all(v > 0 for v in row.values())
    assert row["vmap_over_sequential"] == pytest.approx(row["vmap_nps"] / row["sequential_nps"])
