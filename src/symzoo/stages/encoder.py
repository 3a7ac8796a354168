"""Stage ``encoder``: train one autoencoder on a zoo and write ``results/encoders/{zoo}/{encoder}/``.

Outputs: ``model.pt`` (the best epoch's weights with the model's config and settings), ``history.parquet``
(one row per epoch) and ``summary.json``. ``checkpoint.pt`` holds the resume state after every epoch
(:mod:`symzoo.checkpoint`: a killed or requeued job continues where it stopped; a stale one is discarded) and
goes once the outputs are written, each atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from symzoo.atomic import atomic_path
from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.fit.autoencoder import FitSettings, fingerprint, fit_autoencoder, train_ids
from symzoo.models.autoencoder import save_autoencoder
from symzoo.stages import common

log = logging.getLogger(__name__)

MODEL, HISTORY, SUMMARY, CHECKPOINT = "model.pt", "history.parquet", "summary.json", "checkpoint.pt"


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "encoder", "encoders.<name> (with the zoo's own overrides)")
    common.add_zoo(p, "zoo directory (trains on its train split)")
    common.add_data(p, "the zoo's image set .npz (for the functional loss)")
    common.add_out(p, "output directory (results/encoders/<zoo>/<name>)")
    common.add_device(p, progress=True)


def main(args: argparse.Namespace) -> None:
    settings = FitSettings.from_options(args.options)
    summary = run(args.zoo, args.data, args.out, settings, common.device(args), not args.no_progress)
    print(json.dumps(summary, indent=2, default=str))


def check_inputs(zoo: Zoo, images: ImageSet, ids: dict[str, np.ndarray], zoo_dir: Path, images_path: Path) -> None:
    """A clear error, naming the file, for a zoo and an image set the autoencoder cannot train on."""
    for split in ("train", "val"):
        if len(ids[split]) == 0:
            raise ValueError(
                f"zoo {zoo_dir}: no kept networks in the {split!r} split ({zoo_dir / 'models.parquet'}); "
                "the autoencoder needs train and val networks"
            )
    spec = zoo.spec
    if spec.is_inr:  # INRs take coordinates; their images come from the image set by image_index
        if images.input_shape[0] != 1:
            raise ValueError(f"image set {images_path}: INR zoo {zoo_dir} needs grayscale images")
    elif tuple(images.input_shape) != tuple(spec.input_shape):
        raise ValueError(
            f"image set {images_path}: images of shape {tuple(images.input_shape)} do not fit zoo {zoo_dir}, "
            f"whose networks take {tuple(spec.input_shape)}"
        )
    if not spec.is_inr and images.num_classes > spec.num_classes:
        raise ValueError(
            f"image set {images_path}: labels go up to {images.num_classes - 1}, but the networks of zoo {zoo_dir} "
            f"have {spec.num_classes} classes"
        )
    for split in ("train", "val", "test"):
        if len(images.split(split)[0]) == 0:
            raise ValueError(f"image set {images_path}: x_{split} is empty")
    dataset = zoo.meta.get("dataset")
    if dataset is not None and dataset != images_path.stem:
        log.warning("zoo %s was trained on %r, but the image set is %s", zoo_dir, dataset, images_path)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(
    zoo_dir: Path,
    images_path: Path,
    out_dir: Path,
    settings: FitSettings,
    device: torch.device,
    progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and write the outputs; returns the summary. Resumes from ``out_dir/checkpoint.pt`` when it belongs
    to this run (same settings, networks and images)."""
    zoo_dir, images_path, out_dir = Path(zoo_dir), Path(images_path), Path(out_dir)
    zoo, images = read_zoo(zoo_dir), load_image_set(images_path)
    ids = train_ids(zoo, settings)
    check_inputs(zoo, images, ids, zoo_dir, images_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL, HISTORY, SUMMARY):  # a new run: no output of an older one may look like its result
        (out_dir / name).unlink(missing_ok=True)
    for name in (MODEL, HISTORY, SUMMARY, CHECKPOINT):  # temporaries of a writer that was killed (atomic_path)
        for tmp in out_dir.glob(f".{name}.*.tmp*"):
            tmp.unlink(missing_ok=True)

    ckpt = out_dir / CHECKPOINT
    resume, save_state = common.resumable(ckpt, "autoencoder", fingerprint(zoo, ids, images, settings))
    result = fit_autoencoder(
        zoo,
        images,
        ids,
        settings,
        device,
        resume=resume,
        save_state=save_state,
        on_epoch=on_epoch,
        progress=progress,
    )
    summary = _json_ready({"zoo": str(zoo_dir), "images": str(images_path), **result.summary})
    state_dict = {k: v.detach().to("cpu") for k, v in result.model.state_dict().items()}
    with atomic_path(out_dir / MODEL) as tmp:
        save_autoencoder(tmp, result.model, state_dict, settings=settings.to_options(), epoch=result.best_epoch)
    with atomic_path(out_dir / HISTORY) as tmp:
        result.history.write_parquet(tmp)
    with atomic_path(out_dir / SUMMARY) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    ckpt.unlink(missing_ok=True)
    log.info("wrote %s, %s, %s in %s", MODEL, HISTORY, SUMMARY, out_dir)
    return summary
