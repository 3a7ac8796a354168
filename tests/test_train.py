"""The one training loop (symzoo.fit.train) on a model of its own: any model, any loss over a batch, any score.

The autoencoder and the predictors have their own tests; these check the loop's contract for a trainer that
is neither (a regression from inputs to targets, as a weight-space operator or a vector field would be).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from symzoo.fit.train import OptimSettings, seeded, train

DEVICE = torch.device("cpu")


def optim(**keys) -> OptimSettings:
    base = {
        "lr": 0.05,
        "weight_decay": 0.0,
        "amsgrad": False,
        "warmup_steps": 0,
        "clip": 10.0,
        "batch_size": 8,
        "epochs": 12,
        "patience": None,
        "eval_every": 1,
        "select": "mse",
    }
    return OptimSettings(**(base | keys))


class Problem:
    """y = x W + noise, 40 training and 20 validation examples; the model is a linear layer with dropout."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        w = torch.randn(5, 3, generator=g)
        self.x, self.x_val = torch.randn(40, 5, generator=g), torch.randn(20, 5, generator=g)
        self.y, self.y_val = self.x @ w, self.x_val @ w

    def model(self) -> nn.Module:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(5, 3))

    def loss(self, model: nn.Module):
        return lambda batch, _: (model(self.x[batch]) - self.y[batch]).square().mean()

    def validate(self, model: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return {"mse": float((model(self.x_val) - self.y_val).square().mean())}

    def fit(self, settings: OptimSettings, seed: int = 0, **kwargs):
        with seeded(seed, DEVICE):
            model = self.model()
            return train(
                model,
                self.loss(model),
                self.validate,
                lambda m: (m["mse"],),
                len(self.x),
                settings,
                seed,
                measures=("mse",),
                desc="regression",
                progress=False,
                **kwargs,
            )


def test_the_loop_trains_any_model_and_keeps_its_best_epoch():
    problem = Problem()
    run = problem.fit(optim())
    mse = [row["val_mse"] for row in run.history]
    assert len(mse) == 12 and mse[-1] < 0.2 * mse[0]  # it learns
    assert run.best_epoch == 1 + mse.index(min(mse)) and run.best == {"mse": min(mse)}
    assert problem.validate(run.model)["mse"] == pytest.approx(min(mse))  # the best epoch's weights, loaded
    assert not run.model.training
    assert [row["step"] for row in run.history] == [5 * e for e in range(1, 13)]  # 40 examples, batches of 8
    assert set(run.history[0]) == {"epoch", "step", "lr", "train_loss", "val_mse"}


def test_validation_every_k_epochs_and_at_the_last():
    run = Problem().fit(optim(epochs=7, eval_every=3))
    assert [row["val_mse"] is not None for row in run.history] == [False, False, True, False, False, True, True]


def test_patience_stops_a_run_that_stopped_improving():
    run = Problem().fit(optim(lr=0.0, patience=2))  # lr 0: nothing improves after the first epoch
    assert run.stopped_early and run.best_epoch == 1 and run.epochs_run == 3


def test_an_interrupted_run_resumes_to_the_same_weights():
    problem, settings = Problem(), optim(epochs=6)
    whole = problem.fit(settings)
    states = []

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        problem.fit(settings, save_state=lambda s: states.append(copy.deepcopy(s)), on_epoch=kill_after_two)
    resumed = problem.fit(settings, resume=states[-1])
    assert resumed.history == whole.history and resumed.best_epoch == whole.best_epoch
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_diverging_loss_is_an_error_that_names_the_epoch():
    problem = Problem()
    problem.y = problem.y.clone()
    problem.y[3] = math.nan
    with pytest.raises(FloatingPointError, match="regression: training diverged at epoch 1"):
        problem.fit(optim())


def test_seeded_runs_repeat_and_leave_the_caller_s_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = Problem().fit(optim(epochs=3)), Problem().fit(optim(epochs=3))
    assert torch.equal(torch.get_rng_state(), before)
    assert a.history == b.history
    assert Problem().fit(optim(epochs=3), seed=1).history != a.history
