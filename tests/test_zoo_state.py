"""Training state of a population: resuming repeats the uninterrupted run; a state of another run is not resumed."""

import logging

import polars as pl
import pytest
import torch

from symzoo.zoo.state import TrainSettings, fingerprint, load_state, save_state
from symzoo.zoo.train import train_population
from tests.fixtures.zoo import SPECS, make_data, population, settings


class Interrupted(Exception):
    pass


def interrupted_run(spec, cfg, data, run: TrainSettings, path, stop: int) -> dict:
    """Train, saving the state after every epoch, and stop after epoch ``stop``; returns the fingerprint."""
    resume = fingerprint(spec, cfg, data, run)

    def save_then_stop(state):
        save_state(path, state, resume)
        if state.epoch == stop:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_population(spec, cfg, data, run, progress=False, on_epoch=save_then_stop)
    return resume


def test_resume_after_an_interruption_is_bit_identical(tmp_path):
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg, run = population(6), settings(4, (0, 2, 4))
    full = train_population(spec, cfg, data, run, progress=False)
    resume = interrupted_run(spec, cfg, data, run, tmp_path / "state.pt", stop=2)
    state = load_state(tmp_path / "state.pt", resume)
    assert state.epoch == 2 and sorted(state.checkpoints) == [0, 2]
    resumed = train_population(spec, cfg, data, run, progress=False, state=state)
    assert torch.equal(resumed.params, full.params)
    assert torch.equal(resumed.exp_avg_sq, full.exp_avg_sq)
    assert all(torch.equal(resumed.checkpoints[e], full.checkpoints[e]) for e in (0, 2, 4))
    assert resumed.metrics_frame().equals(full.metrics_frame())


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda cfg, data, run: (cfg.with_columns(learning_rate=pl.col("learning_rate") * 2), data, run), "configs"),
        (lambda cfg, data, run: (cfg, data, TrainSettings(4, (0, 2, 4), batch_size=4)), "batch_size"),
        (lambda cfg, data, run: (cfg, data, TrainSettings(4, (2, 4), batch_size=8, eval_batch_size=16)), "checkpoints"),
        (lambda cfg, data, run: (cfg, data | {"x_test": data["x_test"] + 1}, run), "data"),
    ],
)
def test_a_state_of_another_run_is_removed_with_a_warning(tmp_path, caplog, change, reason):
    """The resume policy of every job (symzoo.checkpoint): never resume, never stop on, a stale state."""
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg, run = population(6), settings(4, (0, 2, 4))
    path = tmp_path / "state.pt"
    interrupted_run(spec, cfg, data, run, path, stop=2)
    other_cfg, other_data, other_run = change(cfg, data, run)
    with caplog.at_level(logging.WARNING, logger="symzoo.checkpoint"):
        assert load_state(path, fingerprint(spec, other_cfg, other_data, other_run)) is None
    assert not path.exists()
    assert str(path) in caplog.text and reason in caplog.text and "starting afresh" in caplog.text


def test_an_unreadable_or_old_format_state_is_removed(tmp_path, caplog):
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg, run = population(2), settings(2)
    resume = fingerprint(spec, cfg, data, run)
    truncated, old = tmp_path / "truncated.pt", tmp_path / "old.pt"
    truncated.write_bytes(b"PK\x03\x04 not a whole file")
    torch.save({"version": 1, "configs": {}, "epoch": 1}, old)  # the format before symzoo.checkpoint
    with caplog.at_level(logging.WARNING, logger="symzoo.checkpoint"):
        assert load_state(truncated, resume) is None and load_state(old, resume) is None
    assert not truncated.exists() and not old.exists()
    assert "not a readable checkpoint" in caplog.text and "not a zoo checkpoint" in caplog.text


def test_a_state_handed_over_must_be_of_this_population():
    spec, data = SPECS["mlp"], make_data(SPECS["mlp"])
    cfg = population(6)
    state = train_population(spec, cfg, data, settings(1), progress=False)
    other = cfg.with_columns(learning_rate=pl.col("learning_rate") * 2)
    with pytest.raises(ValueError, match="learning_rate"):
        train_population(spec, other, data, settings(2), progress=False, state=state)
    with pytest.raises(ValueError, match="run_id"):
        train_population(spec, cfg[:5], data, settings(2), progress=False, state=state)
