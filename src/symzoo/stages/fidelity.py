"""Stage ``fidelity``: how faithfully an autoencoder reconstructs networks, next to trivial controls.

``symzoo fidelity --model ae_NAME=model.pt`` measures the reconstructions of one autoencoder; without ``--model`` it
measures the controls fitted on the train split (identity, medoid, mean prediction, nearest train network).
Either way it writes one row per (model, split) to ``results/fidelity/{zoo}/{name}.parquet``: the measures of
:mod:`symzoo.fit.fidelity` on at most ``networks`` networks of the split and ``images`` test images. The train
split shows memorisation (there, ``nearest_train`` is the nearest *other* train network). An INR zoo is measured
on its pixel grid against each INR's own image (render MSE in place of the KL, PSNR in place of the accuracy).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.fit.fidelity import METRICS, controls, fidelity, log_probs
from symzoo.stages import common
from symzoo.stages.common import FidelitySettings, load_inputs, measured_on, subset

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when there is a model to measure
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)

SPLITS = ("test", "train")
SCHEMA = {"model": pl.String, "split": pl.String, "n": pl.Int64, **{m: pl.Float64 for m in METRICS}}
CONTROLS = "controls"
"""The rows' name without a model."""


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p)
    common.add_data(p, "the zoo's image set .npz (measured on its test images)")
    common.add_named(p, "--model", "ae_NAME=PATH", "an autoencoder's model.pt, rows named ae_NAME; none: the controls")
    common.add_medoid(p)
    common.add_options(p, "fidelity", "the config's fidelity section (networks and images measured)", "fidelity")
    common.add_out(p, "results/fidelity/<zoo>/<name>.parquet")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    device = common.device(args)
    model = common.one_model(args, device)
    ae = model[1] if model else None
    settings = FidelitySettings.from_options(args.fidelity_options)
    run(args.zoo, args.data, settings, args.out, ae, model[0] if model else CONTROLS, device, args.medoid)


def run(
    zoo_dir: Path,
    data_path: Path,
    settings: FidelitySettings,
    out: Path,
    ae: Autoencoder | None,
    name: str,
    device: torch.device,
    medoid_path: Path | None = None,
) -> pl.DataFrame:
    """Measure the autoencoder ``ae`` (rows named ``name``) or, if None, the controls (they need the zoo's
    ``medoid_path``); write ``out``."""
    zoo, image_set = load_inputs(zoo_dir, data_path)
    spec = zoo.spec
    x, y = measured_on(zoo, image_set, "test", settings.images, settings.seed, device)
    rows = []
    train_ids = subset(zoo.ids("train"), settings.train_pool, settings.seed)
    logp_train = log_probs(spec, zoo.tensor(train_ids, device), x) if ae is None else None
    logp_medoid = None
    if ae is None:
        if medoid_path is None:
            raise ValueError("the fidelity controls need the zoo's medoid.json (--medoid)")
        logp_medoid = log_probs(spec, common.load_medoid(medoid_path, zoo, device)[None], x)[0]
    for split in SPLITS:
        ids = subset(zoo.ids(split), settings.networks, settings.seed)
        if len(ids) < 2:
            log.warning("zoo %s: %d kept %s networks; no fidelity rows for that split", zoo_dir, len(ids), split)
            continue
        thetas = zoo.tensor(ids, device)
        if spec.is_inr:  # each INR is measured against its own image
            x, y = measured_on(zoo, image_set, split, settings.images, settings.seed, device, ids)
        logp = log_probs(spec, thetas, x)
        if ae is not None:
            from symzoo.models.autoencoder import reconstruct

            measured = {name: fidelity(logp, log_probs(spec, reconstruct(ae, thetas), x), y)}
        else:
            own = torch.as_tensor(ids).unsqueeze(1) == torch.as_tensor(train_ids).unsqueeze(0)  # a network itself
            measured = controls(logp, logp_train, logp_medoid, y, exclude=own.to(device))
        rows += [{"model": model, "split": split, **values} for model, values in measured.items()]
        for model, values in measured.items():
            log.info("%s / %s: %s", model, split, {k: round(v, 4) for k, v in values.items()})
    frame = pl.DataFrame(rows, schema=SCHEMA)
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    log.info("wrote %s", out)
    return frame
