"""Stage ``merge-many``: groups of K test networks merged into one network by every method, on a classifier zoo.

Writes ``results/merge/{zoo}/merge_many.parquet`` (:func:`symzoo.merge.many.merge_many_table`): one row per K,
group and method, with the parents' mean and best beside the merged network. Groups are drawn (seeded) from the
``merge.top`` best test networks, ``merge.many.groups`` per K of ``merge.many.ks``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from symzoo.atomic import atomic_path
from symzoo.merge.interpolate import top_test_networks
from symzoo.merge.many import draw_groups, frame_merges, merge_many_table
from symzoo.merge.methods import encoder_of
from symzoo.stages import common
from symzoo.stages.common import load_inputs

if TYPE_CHECKING:  # the encoders (torch-geometric) load only when a model is given
    from symzoo.models.autoencoder import Autoencoder

log = logging.getLogger(__name__)


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "merge", "the config's merge section (its `many` entry)")
    common.add_zoo(p, "classifier zoo directory (results/zoo/<name>)")
    common.add_data(p, "image set .npz (evaluated on its test split)")
    common.add_named(
        p, "--model", "ae_NAME=PATH", "an autoencoder (methods ae_NAME, ae_align_NAME and ae_latent_mean_NAME)"
    )
    common.add_medoid(p, required=True)
    common.add_out(p, "results/merge/<zoo>/merge_many.parquet")
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
    """Merge every group by every method (``models``: ``ae_<encoder>`` → autoencoder) and write the table."""
    zoo, image_set = load_inputs(zoo_dir, data_path)
    if zoo.spec.is_inr:
        raise ValueError(f"merge-many: zoo {zoo_dir} holds INRs; merging many is measured on classifier zoos")
    autoencoders = {}
    for name, ae in models.items():
        if encoder_of(name) != name.removeprefix("ae_") or ae.spec != zoo.spec:
            raise ValueError(f"--model {name}: expected ae_<encoder> naming an autoencoder of zoo {zoo_dir}")
        autoencoders[encoder_of(name)] = ae
    many, seed = options["many"], options["seed"]
    candidates = top_test_networks(zoo.models, options["top"], zoo.spec.task)
    groups = draw_groups(candidates, many["ks"], many["groups"], seed)
    members = np.unique(np.concatenate([ids for _, _, ids in groups]))  # each aligned, encoded once

    def params(ids) -> torch.Tensor:
        return zoo.tensor(list(ids), device)

    medoid = common.load_medoid(medoid_path, zoo, device)
    merges = frame_merges(zoo.spec, params, members, medoid, autoencoders, many["rounds"], seed)
    x, y = (torch.from_numpy(v).to(device) for v in image_set.split("test"))
    table = merge_many_table(zoo.spec, params, groups, merges, x, y)
    with atomic_path(out) as tmp:
        table.write_parquet(tmp)
    log.info("wrote %s (%d groups, %d methods, %d distinct networks)", out, len(groups), len(merges), len(members))
    return out
