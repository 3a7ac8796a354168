"""Generated zoos: shards of networks trained together (one job each), merged into the zoo format.

A shard holds every checkpoint of its networks (``params.npy``: rows = checkpoints x networks, and
``models.parquet``: the sampled configuration and the metrics of each row). Merging selects one checkpoint
and then filters and splits exactly as for a downloaded zoo (:func:`symzoo.data.zoo.finalize_models`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import torch

from symzoo import config
from symzoo.atomic import atomic_path
from symzoo.data.images import load_image_set
from symzoo.data.zoo import ARCH, MODELS, PARAMS, finalize_models, write_zoo
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import SamplingRanges, sample_configs
from symzoo.zoo.state import TrainSettings, fingerprint, load_state, save_state
from symzoo.zoo.train import train_population

log = logging.getLogger(__name__)

SHARD_DEFINITION = "zoo_shard"
"""The schema definition of a shard job's options."""


def spec_for(arch: dict, input_shape: tuple[int, ...], num_classes: int) -> NetSpec:
    """The spec of a config's ``arch`` entry on images of ``input_shape`` with ``num_classes`` classes."""
    return NetSpec(
        arch["kind"],
        tuple(input_shape),
        tuple(arch["widths"]),
        num_classes,
        arch.get("activation", "tanh"),
        kernel_size=arch.get("kernel_size", 3),
        stride=arch.get("stride", 2),
        padding=arch.get("padding", 0),
    )


def state_path(out_dir: Path) -> Path:
    """Where a shard keeps its training state between epochs (beside, not inside, its output folder)."""
    return out_dir.with_name(out_dir.name + ".state.pt")


def train_shard(options: dict, data_path: Path, out_dir: Path, device: torch.device, progress: bool = True) -> None:
    """Train networks ``first .. first + count - 1`` of a generated zoo and write the shard.

    ``options``: the zoo's shard keys (arch, batch_size, checkpoints, epochs, sampling, seed) plus ``first``
    and ``count``. Training state is saved after every epoch and picked up by a rerun (a crash, a requeued
    SLURM job), so a killed shard loses at most one epoch; a state of another run is removed with a warning
    (:func:`symzoo.zoo.state.load_state`); the state file is removed once the shard is written.
    """
    out_dir = Path(out_dir)
    images = load_image_set(data_path)
    spec = spec_for(options["arch"], images.input_shape, images.num_classes)
    ranges = SamplingRanges.from_options(options["sampling"])
    configs = sample_configs(options["count"], ranges, options["seed"], first_index=options["first"])
    settings = TrainSettings(options["epochs"], tuple(options["checkpoints"]), options["batch_size"])
    data = {
        key: torch.from_numpy(getattr(images, key))
        for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    }
    saved, resume = state_path(out_dir), fingerprint(spec, configs, data, settings)
    state = load_state(saved, resume)
    if state is not None:
        log.info("resuming %s from epoch %d (%s)", out_dir, state.epoch, saved)
    state = train_population(
        spec,
        configs,
        data,
        settings,
        device,
        progress=progress,
        state=state,
        on_epoch=lambda s: save_state(saved, s, resume),
    )
    epochs, params = state.checkpoint_params()
    rows = pl.DataFrame({"run_id": configs["run_id"].to_list() * len(epochs), "step": np.repeat(epochs, len(configs))})
    metrics = state.metrics_frame().rename({"epoch": "step"})
    models = rows.join(configs, on="run_id", how="left").join(metrics, on=["run_id", "step"], how="left")
    with atomic_path(out_dir / PARAMS) as tmp:
        np.save(tmp, params.reshape(-1, spec.num_params).numpy().astype(np.float32))
    with atomic_path(out_dir / MODELS) as tmp:
        models.write_parquet(tmp)
    with atomic_path(out_dir / ARCH) as tmp:
        tmp.write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    saved.unlink(missing_ok=True)
    log.info("wrote shard %s: %d networks x %d checkpoints", out_dir, len(configs), len(epochs))


def read_shard(shard: Path) -> tuple[NetSpec, np.ndarray, pl.DataFrame]:
    """A shard's spec, memory-mapped parameters (rows = checkpoints x networks) and rows."""
    for name in (PARAMS, MODELS, ARCH):
        if not (shard / name).is_file():
            raise FileNotFoundError(f"shard {shard}: missing {shard / name}")
    spec = NetSpec.from_dict(json.loads((shard / ARCH).read_text()))
    params, models = np.load(shard / PARAMS, mmap_mode="r"), pl.read_parquet(shard / MODELS)
    if params.shape != (len(models), spec.num_params):
        raise ValueError(f"shard {shard}: parameters {params.shape} for {len(models)} rows of {spec.num_params}")
    return spec, params, models


def merge_shards(options: dict, shards: Sequence[Path], out_dir: Path) -> Path:
    """Concatenate the shards, keep checkpoint ``step`` (default: the last), filter, split and write the zoo."""
    options = config.validate(options, "zoo_generate", where="zoo options")
    step = options["step"] if options["step"] is not None else max(options["checkpoints"])
    specs, params, models = [], [], []
    for shard in map(Path, shards):
        spec, p, m = read_shard(shard)
        if specs and spec != specs[0]:
            raise ValueError(f"shard {shard}: architecture {spec} differs from the first shard's {specs[0]}")
        rows = np.flatnonzero((m["step"] == step).to_numpy())
        if not len(rows):
            raise ValueError(f"shard {shard}: no checkpoint at step {step}")
        specs.append(spec)
        params.append(np.asarray(p[rows]))
        models.append(m[rows])
    models = pl.concat(models, how="vertical_relaxed")
    models = models.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("model_id"), pl.all())
    params, models = finalize_models(
        np.concatenate(params),
        models,
        pl.col("test_accuracy") > options["min_accuracy"],
        options["fractions"],
        options["seed"],
    )
    meta = {"dataset": options["dataset"], "source": {"kind": "generate", "step": step, "shards": len(shards)}}
    return write_zoo(out_dir, specs[0], params, models, meta)
