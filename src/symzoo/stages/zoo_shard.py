"""Stage ``zoo-shard``: networks ``first .. first + count - 1`` of a generated zoo, trained together.

Writes ``results/zoo/{zoo}/shards/{shard}/``: ``params.npy``, ``models.parquet`` (one row per checkpoint x
network, :func:`symzoo.zoo.shards.shard_rows`) and ``arch.json``, each atomically. The training state is
saved after every epoch beside the shard (:func:`state_path`) and resumed by a rerun (a crash, a requeued
SLURM job), so a killed shard loses at most one epoch; a state of another run is removed with a warning
(:func:`symzoo.zoo.state.load_state`). The state file goes once the shard is written.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from symzoo.atomic import atomic_path
from symzoo.data.images import KEYS, load_image_set
from symzoo.data.zoo import ARCH, MODELS, PARAMS
from symzoo.nets.spec import NetSpec
from symzoo.stages import common
from symzoo.zoo.sample import SamplingRanges, sample_configs
from symzoo.zoo.shards import shard_rows
from symzoo.zoo.state import TrainSettings, fingerprint, load_state, save_state
from symzoo.zoo.train import population_bytes, train_population

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "zoo_shard", "the zoo's arch, batch_size, checkpoints, epochs, sampling, seed, first, count")
    common.add_data(p, "image set .npz the networks train on")
    common.add_out(p, "shard directory (results/zoo/<name>/shards/<i>)")
    common.add_device(p, progress=True)


def main(args: argparse.Namespace) -> None:
    run(args.options, args.data, args.out, common.device(args), progress=not args.no_progress)


def spec_for(arch: Mapping, input_shape: tuple[int, ...], num_classes: int) -> NetSpec:
    """The spec of a validated ``arch`` entry on images of ``input_shape`` with ``num_classes`` classes."""
    return NetSpec(
        arch["kind"],
        tuple(input_shape),
        tuple(arch["widths"]),
        num_classes,
        arch["activation"],
        kernel_size=arch["kernel_size"],
        stride=arch["stride"],
        padding=arch["padding"],
    )


def train_settings(options: Mapping) -> TrainSettings:
    """The training settings of validated shard options."""
    return TrainSettings(
        options["epochs"], tuple(options["checkpoints"]), options["batch_size"], compile=options["compile"]
    )


def check_fits(spec: NetSpec, networks: int, settings: TrainSettings, device: torch.device) -> None:
    """On a GPU, an error before training (not an out-of-memory crash after it) when the population cannot fit."""
    need = population_bytes(spec, networks, settings)
    log.info("population of %d networks: about %.2f GB on %s", networks, need / 1e9, device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if need > 0.9 * free:
            raise ValueError(
                f"a shard of {networks} networks needs about {need / 1e9:.1f} GB, the GPU has {free / 1e9:.1f} GB "
                "free: lower the zoo's batch_models"
            )


def state_path(out_dir: Path) -> Path:
    """Where a shard keeps its training state between epochs (beside, not inside, its output folder)."""
    return out_dir.with_name(out_dir.name + ".state.pt")


def run(options: Mapping, data_path: Path, out_dir: Path, device: torch.device, progress: bool = True) -> Path:
    """Train and write the shard ``options`` describes (validated against ``$defs/zoo_shard``)."""
    out_dir = Path(out_dir)
    images = load_image_set(data_path)
    spec = spec_for(options["arch"], images.input_shape, images.num_classes)
    ranges = SamplingRanges.from_options(options["sampling"])
    configs = sample_configs(options["count"], ranges, options["seed"], first_index=options["first"])
    settings = train_settings(options)
    check_fits(spec, len(configs), settings, device)
    data = {key: torch.from_numpy(getattr(images, key)) for key in KEYS}
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
    params, models = shard_rows(configs, state)
    with atomic_path(out_dir / PARAMS) as tmp:
        np.save(tmp, params)
    with atomic_path(out_dir / MODELS) as tmp:
        models.write_parquet(tmp)
    with atomic_path(out_dir / ARCH) as tmp:
        tmp.write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    saved.unlink(missing_ok=True)
    log.info("wrote shard %s: %d networks x %d checkpoints", out_dir, len(configs), len(state.checkpoints))
    return out_dir
