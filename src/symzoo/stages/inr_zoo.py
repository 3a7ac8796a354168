"""Stage ``inr-zoo``: an INR zoo (one SIREN per image, fitted as vmapped populations) in the zoo format.

Writes ``results/zoo/{zoo}/`` (:func:`symzoo.data.zoo.write_zoo`): the parameters, one row per INR (``psnr`` and
``mse`` against its upsampled image, ``image_index`` into the image set's train, val and test images
concatenated, the image's ``label``; ``test_accuracy`` is null) and ``arch.json`` with ``image_size`` and the
fitting settings (:mod:`symzoo.zoo.inr`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import torch

from symzoo.data.images import SPLITS, load_image_set
from symzoo.data.zoo import finalize_models, write_zoo
from symzoo.nets.functional import coordinates, render
from symzoo.nets.spec import siren_spec
from symzoo.stages import common
from symzoo.zoo.inr import InrFitSettings, fit_sirens, init_sirens, mse, psnr, targets

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "zoo_inr", "zoos.<name>")
    common.add_data(p, "image set .npz whose images the INRs represent")
    common.add_out(p, "zoo directory (results/zoo/<name>)")
    common.add_device(p)


def main(args: argparse.Namespace) -> None:
    run(args.options, args.data, args.out, common.device(args))
    log.info("wrote %s", args.out)


def run(options: Mapping, data_path: Path, out_dir: Path, device: torch.device) -> Path:
    """Fit the INR zoo ``options`` (validated against ``$defs/zoo_inr``) to the images of ``data_path``."""
    image_set = load_image_set(data_path)
    if image_set.input_shape[0] != 1:
        raise ValueError(f"image set {data_path}: INR zoos need grayscale images, not {image_set.input_shape}")
    xs, ys = zip(*(image_set.split(s) for s in SPLITS), strict=True)
    images, labels = np.concatenate(xs), np.concatenate(ys)
    n = options["num_models"]
    if n > len(images):
        raise ValueError(f"num_models = {n}, but image set {data_path} has {len(images)} images")
    side = options["image_size"]
    spec = siren_spec(tuple(options["arch"]["widths"]), options["arch"]["w0"])
    settings = InrFitSettings(options["steps"], options["lr"], options["seed"])
    truth = targets(images[:n], (side, side))
    init = init_sirens(spec, n, torch.Generator().manual_seed(settings.seed))
    batch = options["batch_models"]
    params = torch.cat(
        [fit_sirens(spec, truth[s : s + batch], settings, device, init[s : s + batch]) for s in range(0, n, batch)]
    )
    error = mse(render(spec, params, coordinates(side, side)), truth).double()
    log.info("fitted %d INRs: PSNR %.2f dB mean, %.2f min", n, psnr(error).mean(), psnr(error).min())
    models = pl.DataFrame(
        {
            "model_id": np.arange(n),
            "run_id": [f"inr-{i:05d}" for i in range(n)],
            "step": np.full(n, settings.steps),
            "test_accuracy": pl.Series([None] * n, dtype=pl.Float64),
            "psnr": psnr(error).numpy(),
            "mse": error.numpy(),
            "image_index": np.arange(n),
            "label": labels[:n],
        },
        schema_overrides={"model_id": pl.Int64, "step": pl.Int64, "image_index": pl.Int64, "label": pl.Int64},
    )
    kept = pl.lit(True) if options["min_psnr"] is None else pl.col("psnr") > options["min_psnr"]
    params, models = finalize_models(
        params.numpy().astype(np.float32), models, kept, options["fractions"], options["seed"]
    )
    meta = {
        "dataset": options["dataset"],
        "image_size": [side, side],
        "source": {"kind": "inr", "steps": settings.steps, "lr": settings.lr, "seed": settings.seed},
    }
    return write_zoo(out_dir, spec, params, models, meta)
