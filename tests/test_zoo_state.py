"""Training state of a population: resuming repeats the uninterrupted run."""

import polars as pl
import pytest
import torch

from symzoo.zoo.state import TrainSettings, load_state, save_state
from symzoo.zoo.train import train_population
from tests.fixtures.zoo import SPECS, make_data, population, settings


class Interrupted(Exception):
    pass


def test_resume_after_an_interruption_is_bit_identical(tmp_path):
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg, run = population(6), settings(4, (0, 2, 4))
    full = train_population(spec, cfg, data, run, progress=False)

    def stop_after_two(state):
        if state.epoch == 2:
            save_state(state, tmp_path / "state.pt")
            raise Interrupted

    with pytest.raises(Interrupted):
        train_population(spec, cfg, data, run, progress=False, on_epoch=stop_after_two)
    state = load_state(tmp_path / "state.pt")
    assert state.epoch == 2 and sorted(state.checkpoints) == [0, 2]
    resumed = train_population(spec, cfg, data, run, progress=False, state=state)
    assert torch.equal(resumed.params, full.params)
    assert torch.equal(resumed.exp_avg_sq, full.exp_avg_sq)
    assert all(torch.equal(resumed.checkpoints[e], full.checkpoints[e]) for e in (0, 2, 4))
    assert resumed.metrics_frame().equals(full.metrics_frame())
    # a state only resumes the population it was saved from
    with pytest.raises(ValueError, match="learning_rate"):
        other = cfg.with_columns(learning_rate=pl.col("learning_rate") * 2)
        train_population(spec, other, data, run, progress=False, state=load_state(tmp_path / "state.pt"))
    with pytest.raises(ValueError, match="batch_size"):
        other_batch = TrainSettings(epochs=4, checkpoints=(), batch_size=4)
        train_population(spec, cfg, data, other_batch, progress=False, state=load_state(tmp_path / "state.pt"))
