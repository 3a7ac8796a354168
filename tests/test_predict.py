"""Generalization prediction: StatNN features, metrics, invariance of the predictors, a short run that learns."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.data.zoo import finalize_models, write_zoo
from symzoo.fit.predict import PredictSettings, fit_predictor, predict
from symzoo.metrics import regression_metrics
from symzoo.models.predictors import build_predictor, statnn_features
from symzoo.nets.functional import evaluate
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import random_transform, transform
from symzoo.stages import predict as predict_stage
from tests.test_nets import init_params

SPEC = NetSpec("mlp", (1, 4, 4), (6, 5), 3, "tanh")


def settings(kind: str, **keys) -> PredictSettings:
    small = {"hidden": 16, "layers": 2, "latent": 8, "epochs": 3, "warmup_steps": 2, "batch_size": 8}
    return PredictSettings.from_options(config.entry("predictor", kind=kind, **(small | keys)), seed=0)


def test_statnn_features_match_numpy():
    thetas = init_params(SPEC, 5)
    features = statnn_features(SPEC, thetas).numpy()
    assert features.shape == (5, 14 * SPEC.num_layers)
    expected = []
    for layer in range(SPEC.num_layers):
        for name in ("weight", "bias"):
            slot = SPEC.tensor(layer, name)
            v = thetas[:, slot.offset : slot.stop].double().numpy()
            expected += [v.mean(1, keepdims=True), v.var(1, ddof=1, keepdims=True)]
            expected.append(np.quantile(v, [0, 0.25, 0.5, 0.75, 1], axis=1).T)
    np.testing.assert_allclose(features, np.concatenate(expected, axis=1), rtol=1e-5, atol=1e-6)


def test_a_perfect_predictor_has_tau_one():
    y = np.linspace(0.1, 0.9, 20)
    m = regression_metrics(y, y)
    assert m["tau"] == pytest.approx(1) and m["r2"] == pytest.approx(1) and m["l1"] == 0
    assert regression_metrics(y[::-1], y)["tau"] == pytest.approx(-1)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(("kind", "group", "invariant"), [
    ("scalegmn", "both", True),
    ("ngnn", "permutation", True),
    ("statnn", "permutation", True),
    ("ngnn", "both", False),
    ("flat_mlp", "permutation", False),
])  # fmt: skip
def test_predictions_are_invariant_exactly_where_the_predictor_is(activation, kind, group, invariant):
    spec = NetSpec("mlp", (1, 4, 4), (6, 5), 3, activation)
    thetas = init_params(spec, 8)
    torch.manual_seed(0)
    s = settings(kind)
    model = build_predictor(spec, kind, thetas, s.encoder, s.hidden, s.layers, s.dropout).eval()
    g = random_transform(spec, group, (8,), torch.Generator().manual_seed(1))
    moved = transform(spec, thetas, g)
    before, after = predict(model, thetas), predict(model, moved)
    if invariant:
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    else:
        assert np.abs(after - before).max() > 1e-4


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One network trained on a random linear task, copied with noise of a spread of sizes: accuracy falls as the
    noise (and with it the weights' spread) grows, so it can be read off the weights."""
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(16, 3, generator=g)
    x = torch.randn(200, 1, 4, 4, generator=g)
    y = (x.flatten(1) @ w_true).argmax(1)
    theta = init_params(SPEC, 1, seed=3)
    for _ in range(60):
        theta.requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(_logits(theta, x), y), theta)
        theta = (theta - 0.5 * grad).detach()
    n = 150
    sigma = torch.linspace(0.0, 1.5, n).unsqueeze(1)
    thetas = theta + sigma * torch.randn(n, SPEC.num_params, generator=g)
    _, acc = evaluate(SPEC, thetas, x, y)
    models = pl.DataFrame(
        {
            "model_id": range(n),
            "run_id": [f"r{i}" for i in range(n)],
            "step": [1] * n,
            "test_accuracy": acc.double().numpy(),
        }
    )
    params, models = finalize_models(thetas.numpy(), models, pl.lit(True), [0.6, 0.2, 0.2])
    root = tmp_path_factory.mktemp("zoo") / "zoo"
    write_zoo(root, SPEC, params, models)
    return root


def _logits(theta, x):
    from symzoo.nets.functional import batched_forward

    return batched_forward(SPEC, theta, x).flatten(0, 1)


@pytest.mark.slow  # a real predictor training run (about 15 s)
def test_a_short_run_learns_to_rank_networks(zoo, tmp_path):
    options = config.entry(
        "predictor",
        kind="statnn",
        hidden=32,
        layers=2,
        epochs=100,
        warmup_steps=5,
        batch_size=16,
        lr=1e-2,
        weight_decay=0,
    )
    summary = predict_stage.run(zoo, options, 0, tmp_path / "out", torch.device("cpu"), progress=False)
    assert summary["test"]["tau"] > 0.5
    frame = pl.read_parquet(tmp_path / "out" / predict_stage.PREDICTIONS)
    assert set(frame.columns) == {"model_id", "accuracy", "predicted", "predicted_permuted", "predicted_transformed"}
    np.testing.assert_allclose(frame["predicted_permuted"], frame["predicted"], rtol=1e-4, atol=1e-5)
    assert math.isfinite(pl.read_parquet(tmp_path / "out" / predict_stage.HISTORY)["val_tau"].max())


def test_fit_selects_the_epoch_with_the_best_validation_tau(zoo):
    from symzoo.data.zoo import read_zoo

    z = read_zoo(zoo)
    accuracy = z.models["test_accuracy"].to_numpy()
    data = {s: (z.tensor(z.ids(s)), torch.from_numpy(accuracy[z.ids(s)]).float()) for s in ("train", "val")}
    trained = fit_predictor(SPEC, settings("statnn", epochs=10), data["train"], data["val"], torch.device("cpu"), False)
    best = max(r["val_tau"] for r in trained.history)
    assert trained.history[trained.best_epoch - 1]["val_tau"] == best
    assert regression_metrics(predict(trained.model, data["val"][0]), data["val"][1].numpy())["tau"] == pytest.approx(
        best
    )


def test_an_interrupted_predictor_resumes_to_the_same_predictions(zoo, tmp_path):
    """A predictor job stopped after epoch 2 (as a kill would) continues from its checkpoint and ends with the
    predictions, history and no checkpoint of an uninterrupted run."""
    options = config.entry("predictor", kind="statnn", hidden=16, layers=2, epochs=6, warmup_steps=2, batch_size=16)
    cpu = torch.device("cpu")
    predict_stage.run(zoo, options, 0, tmp_path / "whole", cpu, progress=False)

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_stage.run(zoo, options, 0, tmp_path / "cut", cpu, progress=False, on_epoch=stop_after_two)
    assert (tmp_path / "cut" / predict_stage.CHECKPOINT).is_file()
    epochs = []
    predict_stage.run(
        zoo, options, 0, tmp_path / "cut", cpu, progress=False, on_epoch=lambda r: epochs.append(r["epoch"])
    )
    assert epochs == [3, 4, 5, 6]
    for name in (predict_stage.PREDICTIONS, predict_stage.HISTORY):
        whole, cut = (pl.read_parquet(tmp_path / d / name) for d in ("whole", "cut"))
        assert whole.equals(cut), name
    assert not (tmp_path / "cut" / predict_stage.CHECKPOINT).exists()
