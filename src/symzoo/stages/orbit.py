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
from symzoo.stages.common import FidelitySettings, load_inputs, train_medoid

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
    """The baselines of ``options["methods"]``, the medoid control and the autoencoders ``models`` (name → model)."""
    zoo, image_set = load_inputs(zoo_dir, data_path)
    x, y = (torch.from_numpy(v).to(device) for v in image_set.split("test"))
    methods = {m: None for m in (*options["methods"], MEDOID) if m in BASELINES} | models
    _, medoid = train_medoid(zoo, image_set, fidelity, device)
    orbit = options["orbit"]
    frame = orbit_curves(
        zoo, x, y, methods, orbit["kinds"], orbit["networks"], options["alphas"], options["seed"], medoid
    )
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s", out)
    return out
