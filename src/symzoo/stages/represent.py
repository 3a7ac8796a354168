"""Stage ``represent``: one representation of a zoo for the generative models (``results/generate/{zoo}/represent/
{representation}/``).

Writes ``params.npy``: float32 (N, P), row i the representation of the zoo's network i (kept networks; the others
copied as they are), each a group element applied to its network (:mod:`symzoo.align.represent`: the same
function), aligned to the train medoid (``medoid.json``); and ``summary.json`` (the representation, the medoid,
how far the networks moved toward it, the seconds it took).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from symzoo.align.represent import REPRESENTATIONS, represent
from symzoo.data.networks import write_networks, write_summary
from symzoo.data.zoo import read_zoo
from symzoo.stages import common

log = logging.getLogger(__name__)

PARAMS, SUMMARY = "params.npy", "summary.json"


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_zoo(p)
    p.add_argument("--representation", required=True, choices=REPRESENTATIONS, help="raw, aligned or normalized")
    common.add_medoid(p, required=True)
    common.add_out(p, "results/generate/<zoo>/represent/<representation>")


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.representation, args.medoid, args.out)


def run(zoo_dir: Path, representation: str, medoid_path: Path, out_dir: Path) -> dict:
    zoo = read_zoo(zoo_dir)
    if zoo.spec.is_inr:
        raise ValueError(f"zoo {zoo_dir}: the generation experiment is for classifier zoos, not INR zoos")
    reference = common.load_medoid(medoid_path, zoo, torch.device("cpu"))
    ids = zoo.ids()
    thetas = zoo.tensor(ids)
    tick = time.perf_counter()
    represented, _ = represent(zoo.spec, thetas, reference, representation)
    seconds = time.perf_counter() - tick
    params = torch.from_numpy(zoo.params[:].copy())
    params[torch.tensor(ids)] = represented
    write_networks(Path(out_dir) / PARAMS, params)
    represented_reference = represent(zoo.spec, reference[None], reference, representation)[0][0]
    before = (thetas - reference).norm(dim=1).mean().item()
    after = (represented - represented_reference).norm(dim=1).mean().item()
    summary = {"zoo": str(zoo_dir), "representation": representation, "medoid": medoid_path.name,
               "networks": len(ids), "seconds": seconds, "distance_to_medoid_before": before,
               "distance_to_medoid_after": after}  # fmt: skip
    write_summary(Path(out_dir) / SUMMARY, summary)
    log.info("%s of %s: %d networks in %.1f s; mean distance to the medoid %.3f -> %.3f", representation, zoo_dir,
             len(ids), seconds, before, after)  # fmt: skip
    return summary
