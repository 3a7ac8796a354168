"""The shared optimiser: AdamW with a linear warm-up, and a warning when the warm-up outlasts training."""

from __future__ import annotations

import logging

import pytest
import torch

from symzoo.fit.optim import adamw_with_warmup


def learning_rates(warmup: int, total: int) -> list[float]:
    weight = torch.nn.Parameter(torch.zeros(2))
    opt, sched = adamw_with_warmup(
        [weight], lr=1e-3, weight_decay=0.0, amsgrad=False, warmup_steps=warmup, total_steps=total
    )
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_warmup_is_linear_then_constant():
    assert learning_rates(4, 6) == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_a_warmup_longer_than_training_is_named(caplog):
    with caplog.at_level(logging.WARNING, logger="symzoo.fit.optim"):
        rates = learning_rates(20, 14)
    assert max(rates) < 1e-3
    assert "warm-up of 20 steps is longer than the training (14 steps)" in caplog.text


def test_no_warning_when_training_outlasts_the_warmup(caplog):
    with caplog.at_level(logging.WARNING, logger="symzoo.fit.optim"):
        learning_rates(5, 14)
    assert caplog.text == ""
