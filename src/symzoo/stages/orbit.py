"""Stage ``orbit``: every test network interpolated with random symmetry transforms of itself, per method.

Writes ``results/merge/{zoo}/orbit.parquet`` (:func:`symzoo.merge.orbit.orbit_curves`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from symzoo.atomic import atomic_path
from symzoo.merge.methods import BASELINES, MEDOID, autoencoder_methods, encoder_of
from symzoo.merge.orbit import orbit_curves
from symzoo.stages import common
from symzoo.stages.common import load_inputs, measured_on

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a method needs a model
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "merge", "the config's merge section (with the zoo's own orbit entry merged in)")
    common.add_zoo(p)
    common.add_data(p, "image set .npz (evaluated on its test split)")
    common.add_named(p, "--model", "ae_NAME=PATH", "an autoencoder to include as the method ae_NAME")
    common.add_medoid(p, required=True)
    common.add_out(p, "orbit curves (results/merge/<zoo>/orbit.parquet)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    device = common.device(args)
    models = common.load_models(common.named(args, "--model"), device)
    run(args.zoo, args.data, args.options, args.medoid, models, args.out, device)


def run(
    zoo_dir: Path,
    data_path: Path,
    options: dict,
    medoid_path: Path,
    models: dict[str, Autoencoder],
    out: Path,
    device: torch.device,
) -> Path:
    """The baselines of ``options["methods"]``, the medoid control and the autoencoders ``models`` (name → model).

    ``options`` is the merge section; a zoo's own ``orbit`` entry (INR zoos) has been merged into ``options["orbit"]``.
    """
    zoo, image_set = load_inputs(zoo_dir, data_path)
    x, y = measured_on(zoo, image_set, "test", len(image_set.split("test")[0]), 0, device)
    truth = None
    if zoo.spec.is_inr:
        from symzoo.zoo.inr import zoo_targets

        def truth(ids):
            return zoo_targets(zoo, image_set, ids, device)

    methods = {m: None for m in (*options["methods"], MEDOID) if m in BASELINES} | {
        method: ae for name, ae in models.items() for method in autoencoder_methods(encoder_of(name))
    }
    medoid = common.load_medoid(medoid_path, zoo, device)
    orbit = options["orbit"]
    frame = orbit_curves(
        zoo,
        x,
        y,
        methods,
        orbit["kinds"],
        orbit["networks"],
        orbit["alphas"] or options["alphas"],
        options["seed"],
        medoid,
        noise=orbit["noise"],
        copies=orbit["copies"],
        truth=truth,
    )
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s", out)
    return out
