"""Stage ``orbit``: every test network interpolated with random symmetry transforms of itself, per method.

Writes ``results/merge/{zoo}/orbit.parquet`` (:func:`symzoo.merge.orbit.orbit_curves`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from symzoo.atomic import atomic_path
from symzoo.merge.methods import BASELINES, MEDOID
from symzoo.merge.orbit import orbit_curves
from symzoo.stages.common import FidelitySettings, load_inputs, measured_on, train_medoid

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a method needs a model
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)


def run(
    zoo_dir: Path,
    data_path: Path,
    options: dict,
    fidelity: FidelitySettings,
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

    methods = {m: None for m in (*options["methods"], MEDOID) if m in BASELINES} | models
    _, medoid = train_medoid(zoo, image_set, fidelity, device)
    orbit = options["orbit"]
    frame = orbit_curves(
        zoo,
        x,
        y,
        methods,
        orbit["kinds"],
        orbit["networks"],
        orbit.get("alphas") or options["alphas"],
        options["seed"],
        medoid,
        noise=orbit.get("noise", 0.0),
        copies=orbit.get("copies", 1),
        truth=truth,
    )
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s", out)
    return out
