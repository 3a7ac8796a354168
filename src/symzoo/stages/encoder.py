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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from symzoo.atomic import atomic_path
from symzoo.data.images import load_image_set
from symzoo.data.networks import json_ready
from symzoo.data.zoo import read_zoo
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
    common.check_inputs(zoo, images, ids, zoo_dir, images_path)
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
    summary = json_ready({"zoo": str(zoo_dir), "images": str(images_path), **result.summary})
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
