"""Stage ``medoid``: the train split's medoid of a zoo, once (``results/merge/{zoo}/medoid.json``).

The medoid is the train network with the smallest mean KL from the other train networks (render MSE for an INR
zoo), on validation images, never the test images: at most ``fidelity.networks`` train networks and
``fidelity.images`` images (seeded choices). The medoid method, the orbit experiment and the fidelity controls
all read this one record.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from symzoo.data.merge import write_medoid
from symzoo.fit.fidelity import log_probs, medoid
from symzoo.stages import common
from symzoo.stages.common import FidelitySettings, load_inputs, measured_on, subset

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p)
    common.add_data(p, "the zoo's image set .npz (the medoid is chosen on x_val)")
    common.add_options(p, "fidelity", "the config's fidelity section (networks and images)", section="fidelity")
    common.add_out(p, "medoid.json (results/merge/<zoo>/medoid.json)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    settings = FidelitySettings.from_options(args.fidelity_options)
    run(args.zoo, args.data, settings, args.out, common.device(args))


def run(zoo_dir: Path, data_path: Path, settings: FidelitySettings, out: Path, device: torch.device) -> int:
    """Choose the medoid and write ``out``; returns its model id."""
    zoo, image_set = load_inputs(zoo_dir, data_path)
    ids = subset(zoo.ids("train"), settings.networks, settings.seed)
    if len(ids) < 2:
        raise ValueError(f"zoo {zoo.root}: the medoid needs at least 2 kept train networks, found {len(ids)}")
    x, _ = measured_on(zoo, image_set, "val", settings.images, settings.seed, device)
    model_id = int(ids[medoid(log_probs(zoo.spec, zoo.tensor(ids, device), x), inr=zoo.spec.is_inr)])
    write_medoid(out, model_id, candidates=len(ids), images=len(x), seed=settings.seed)
    log.info("train medoid of %s: network %d (of %d candidates); wrote %s", zoo_dir, model_id, len(ids), out)
    return model_id
