"""Stage ``generate``: one generative model of a classifier zoo's weights (or one control), sampled and judged.

``--model`` names an entry of ``generate.models`` (a flow, :mod:`symzoo.fit.flow`, trained on the train networks
in its representation, ``--represented``) or a control (:mod:`symzoo.fit.generation_methods`): ``test`` (the zoo's
test networks), ``memoriser`` (random train networks), ``noise`` (random train networks plus Gaussian noise of a
per-layer relative level found by bisection so that their mean validation accuracy matches the best model's,
``--summary``) and ``gaussian`` (a Gaussian fitted to the aligned train networks, ``--represented`` the aligned
representation). Every set of networks is judged the same way on the test images (:mod:`symzoo.fit.samples`).

Writes ``results/generate/{zoo}/{model}/``: ``samples.npy`` (float32 (N, P), networks in the zoo's layout: a
representation is a group element applied to each network, so samples run as they are), ``networks.parquet`` (per
sample: accuracy, CE, nearest-train agreement and KL), ``summary.json`` (quality, novelty, diversity, ensembles, the
validation accuracy that ranks models, the other samplers' quality, the likelihood of held-out test networks) and,
for a flow, ``history.parquet`` and ``model.pt``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from symzoo.atomic import atomic_path
from symzoo.checkpoint import digest
from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.networks import read_networks, read_summary, write_networks, write_summary
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.fit import flow
from symzoo.fit.fidelity import log_probs
from symzoo.fit.generation_methods import CONTROLS
from symzoo.fit.samples import ensembles, judge
from symzoo.graph.neural_graph import GraphStructure
from symzoo.graph.stats import LayerStats
from symzoo.nets.functional import evaluate
from symzoo.nets.symmetry import random_transform, scaling_group, transform
from symzoo.stages import common

log = logging.getLogger(__name__)

SAMPLES, NETWORKS, SUMMARY, HISTORY, MODEL, CHECKPOINT = (
    "samples.npy", "networks.parquet", "summary.json", "history.parquet", "model.pt", "checkpoint.pt",
)  # fmt: skip
NOISE_SEARCH = 14
"""Bisection steps of the noise control's level (relative to each layer's std, in [0, 4])."""


def arguments(p: argparse.ArgumentParser) -> None:
    common.add_options(p, "generate", "the generate section")
    common.add_zoo(p, "classifier zoo directory (results/zoo/<name>)")
    common.add_data(p)
    p.add_argument("--model", required=True, help=f"a model of generate.models, or a control: {', '.join(CONTROLS)}")
    p.add_argument("--represented", type=Path, help="the model's representation (represent/<r>/params.npy)")
    p.add_argument("--min-accuracy", type=float, default=0.0, help="the zoo's min_accuracy")
    common.add_named(p, "--summary", "MODEL=PATH", "the noise control: the models' summary.json")
    common.add_out(p, "results/generate/<zoo>/<model>")
    common.add_device(p, progress=True)


def main(args: argparse.Namespace) -> None:
    run(args.zoo, args.data, args.options, args.model, args.out, common.device(args), args.represented,
        args.min_accuracy, common.named(args, "--summary"), not args.no_progress)  # fmt: skip


def run(
    zoo_dir: Path,
    data_path: Path,
    options: dict[str, Any],
    model: str,
    out_dir: Path,
    device: torch.device,
    represented: Path | None = None,
    min_accuracy: float = 0.0,
    summaries: dict[str, Path] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Make (or train and sample) the networks of ``model``, judge them and write ``out_dir``; returns the summary."""
    zoo, images = read_zoo(zoo_dir), load_image_set(data_path)
    if zoo.spec.is_inr:
        raise ValueError(f"zoo {zoo_dir}: the generation experiment is for classifier zoos, not INR zoos")
    ids = {split: zoo.ids(split) for split in ("train", "val", "test")}
    common.check_inputs(zoo, images, ids, Path(zoo_dir), Path(data_path))
    if model not in CONTROLS and model not in options["models"]:
        raise ValueError(f"--model {model!r}: neither a control {CONTROLS} nor a model of generate.models")
    needs_representation = model == "gaussian" or model in options["models"]
    if needs_representation and represented is None:
        raise ValueError(f"--model {model}: give its representation's params.npy (--represented)")
    rep = read_networks(represented, zoo.spec, len(zoo)) if needs_representation else None
    out_dir = Path(out_dir)
    x_test, y_test = (torch.from_numpy(a).to(device) for a in images.split("test"))
    x_val, y_val = (torch.from_numpy(a).to(device) for a in images.split("val"))
    train = zoo.tensor(ids["train"], device)
    g = torch.Generator().manual_seed(options["seed"])
    n = options["samples"]
    summary: dict[str, Any] = {"zoo": str(zoo_dir), "model": model, "device": str(device)}
    files: dict[str, Any] = {}
    tick = time.perf_counter()
    if model == "test":
        samples = zoo.tensor(ids["test"], device)
        summary |= {"kind": "control"}
    elif model == "memoriser":
        samples = train[_draw(len(train), n, g)]
        summary |= {"kind": "control"}
    elif model == "gaussian":
        samples = _gaussian(rep[torch.tensor(ids["train"])].to(device), n, g)
        summary |= {"kind": "control", "representation": "aligned"}
    elif model == "noise":
        target = _best_validation_accuracy(summaries or {})
        samples, level = _noise(zoo, train, target, n, g, x_val, y_val)
        summary |= {"kind": "control", "noise_level": level, "target_val_accuracy": target}
    else:
        samples, extra, files = _flow(zoo, images, rep, ids, options, model, out_dir, device, g, (x_test, y_test),
                                      min_accuracy, progress)  # fmt: skip
        summary |= extra
    common.refuse_nonfinite({model: samples}, "samples")
    summary["seconds"] = time.perf_counter() - tick
    logp_train = log_probs(zoo.spec, train, x_test)
    frame, test = judge(zoo.spec, samples, logp_train, x_test, y_test, min_accuracy)
    _, val_acc = evaluate(zoo.spec, samples, x_val, y_val)
    ens = ensembles(log_probs(zoo.spec, samples, x_test), y_test, options["ensembles"], options["ensemble_repeats"],
                    options["seed"])  # fmt: skip
    summary |= {"test": test, "val_accuracy": float(val_acc.double().mean()), "ensembles": ens.to_dicts(),
                "min_accuracy": min_accuracy, "test_images": len(x_test), "train_networks": len(train)}  # fmt: skip
    for file, write in files.items():
        write(out_dir / file)
    write_networks(out_dir / SAMPLES, samples)
    common.write_table(frame, out_dir / NETWORKS)
    write_summary(out_dir / SUMMARY, summary)
    (out_dir / CHECKPOINT).unlink(missing_ok=True)
    log.info("%s: %d networks, test accuracy %.4f ± %.4f, nearest-train agreement (median) %.3f", model, len(frame),
             test["accuracy"], test["accuracy_std"], test["nearest_agreement_median"])  # fmt: skip
    return summary


def _draw(population: int, n: int, g: torch.Generator) -> torch.Tensor:
    """n indices of a population: without replacement while it lasts."""
    order = torch.cat([torch.randperm(population, generator=g) for _ in range(-(-n // population))])
    return order[:n]


def _gaussian(aligned: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n draws of the Gaussian (mean and full covariance, a little ridge) fitted to the aligned train networks."""
    x = aligned.double()
    mean = x.mean(0)
    cov = torch.cov(x.T) + 1e-6 * torch.eye(x.shape[1], dtype=x.dtype, device=x.device) * x.var(0).mean()
    tril = torch.linalg.cholesky(cov)
    z = torch.randn(n, x.shape[1], generator=g, dtype=x.dtype).to(x.device)
    return (mean + z @ tril.T).float()


def _best_validation_accuracy(summaries: dict[str, Path]) -> float:
    """The highest mean validation accuracy among the models' samples (the noise control's target)."""
    if not summaries:
        raise ValueError("--model noise: give the models' summary.json (--summary NAME=PATH) to match their accuracy")
    return max(float(read_summary(path)["val_accuracy"]) for path in summaries.values())


def _noise(
    zoo: Zoo, train: torch.Tensor, target: float, n: int, g: torch.Generator, x_val: torch.Tensor, y_val: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Random train networks plus noise of a relative level (times each layer's std) whose mean validation accuracy
    matches ``target`` (bisection; the noise itself drawn once)."""
    base = train[_draw(len(train), n, g)]
    std, _ = LayerStats.fit(GraphStructure.from_spec(zoo.spec), train.cpu()).per_parameter(zoo.spec)
    noise = torch.randn(base.shape, generator=g).to(base.device) * std.to(base.device)
    lo, hi = 0.0, 4.0
    for _ in range(NOISE_SEARCH):
        mid = (lo + hi) / 2
        _, acc = evaluate(zoo.spec, base + mid * noise, x_val, y_val)
        lo, hi = (mid, hi) if float(acc.double().mean()) > target else (lo, mid)
    level = (lo + hi) / 2
    return base + level * noise, level


def _flow(
    zoo: Zoo,
    images: ImageSet,
    rep: torch.Tensor,
    ids: dict[str, np.ndarray],
    options: dict[str, Any],
    name: str,
    out_dir: Path,
    device: torch.device,
    g: torch.Generator,
    test_images: tuple[torch.Tensor, torch.Tensor],
    min_accuracy: float,
    progress: bool,
) -> tuple[torch.Tensor, dict[str, Any], dict[str, Any]]:
    """Train the flow ``name`` (resumable), sample it with every sampler, and measure test networks' likelihood:
    the samples, the summary's entries, and the writers of ``model.pt`` and ``history.parquet``."""
    from symzoo.models.saved import save_model

    entry = dict(options["models"][name])
    if entry["operator"] == "auto":
        entry["operator"] = "scalegmn" if scaling_group(zoo.spec) == "sign" else "ngnn"
    if entry["geometry"] == "sphere" and (entry["representation"] != "normalized" or zoo.spec.activation != "relu"):
        raise ValueError(f"model {name!r}: the sphere geometry is for the normalized representation of ReLU zoos")
    settings = flow.FlowSettings.from_options(entry)
    split = {s: rep[torch.tensor(ids[s])] for s in ids}
    stamp = {"settings": settings.to_options(), "spec": zoo.spec.to_dict(),
             "sha256": digest([split["train"].numpy().tobytes(), split["val"].numpy().tobytes()])}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    resume, save_state = common.resumable(out_dir / CHECKPOINT, "flow", stamp)
    tick = time.perf_counter()
    val_images = common.images(images, "val", options["val_images"], options["seed"], device)
    trained = flow.fit_flow(zoo.spec, settings, split["train"], split["val"], val_images, device, progress, resume,
                            save_state)  # fmt: skip
    train_seconds = time.perf_counter() - tick
    field = trained.model
    samplers = [options["sampler"], *(s for s in options["samplers"] if s != options["sampler"])]
    if settings.geometry == "sphere":
        samplers = ["euler"]
    drawn, quality = {}, {}
    for sampler in samplers:
        tick = time.perf_counter()
        drawn[sampler] = flow.sample(field, options["samples"], sampler, options["steps"], g, settings.geometry,
                                     options["eta"], options["tolerance"])  # fmt: skip
        seconds = time.perf_counter() - tick
        _, acc = evaluate(zoo.spec, drawn[sampler], *test_images)
        acc = acc.double()
        quality[sampler] = {"accuracy": float(acc.mean()), "accuracy_std": float(acc.std()),
                            "at_least_min_accuracy": float((acc >= min_accuracy).double().mean()),
                            "seconds_per_network": seconds / options["samples"]}  # fmt: skip
    likelihood = _likelihood(zoo, field, split["test"], options, settings) if settings.geometry == "euclidean" else {}
    state_dict = {k: v.detach().to("cpu") for k, v in field.state_dict().items()}

    def write_model(path: Path) -> None:
        with atomic_path(path) as tmp:
            save_model(tmp, field, state_dict, settings=settings.to_options(), epoch=trained.best_epoch)

    history = pl.DataFrame(trained.history, schema=flow.HISTORY_SCHEMA)
    files = {MODEL: write_model, HISTORY: lambda path: common.write_table(history, path)}
    extra = {"kind": "flow", "representation": entry["representation"], "field": settings.field.field,
             "operator": entry["operator"] if settings.field.field == "graph" else None,
             "geometry": settings.geometry, "coupling": settings.coupling, "settings": settings.to_options(),
             "train_seconds": train_seconds, "best_epoch": trained.best_epoch, "steps": trained.steps,
             "validation": trained.best, "sampler": options["sampler"], "samplers": quality,
             "likelihood": likelihood}  # fmt: skip
    return drawn[options["sampler"]], extra, files


def _likelihood(zoo: Zoo, field, test: torch.Tensor, options: dict[str, Any], settings) -> dict[str, Any]:
    """The log-density per parameter of held-out test networks (their representation) under a Euclidean flow; for
    a graph field, also its change under random elements of the group it is invariant to."""
    spec, opts = zoo.spec, options["likelihood"]
    device = field.shift.device
    nets = test[: opts["networks"]].to(device)
    seed = options["seed"]
    log_p = flow.log_likelihood(field, nets, opts["steps"], opts["probes"], seed)
    out = {"networks": len(nets), "per_parameter": float(log_p.mean()) / spec.num_params,
           "per_parameter_std": float(log_p.std()) / spec.num_params if len(nets) > 1 else 0.0}  # fmt: skip
    if settings.field.field == "graph":
        # the Hutchinson estimate is random (its probe does not move with the group element), so the change under g
        # is set beside the change between two probe draws on the same networks: for an invariant density the two
        # are of one size (the exact divergence, too slow here, gives equality: see the tests)
        kind = "both" if scaling_group(spec) == "sign" and settings.field.operator == "scalegmn" else "permutation"
        moved = transform(spec, nets, random_transform(spec, kind, (len(nets),), torch.Generator().manual_seed(seed)))
        log_p_moved = flow.log_likelihood(field, moved, opts["steps"], opts["probes"], seed)
        log_p_again = flow.log_likelihood(field, nets, opts["steps"], opts["probes"], seed + 1)
        out |= {"invariance_group": kind, "invariance_gap": float((log_p_moved - log_p).abs().mean()),
                "probe_gap": float((log_p_again - log_p).abs().mean())}  # fmt: skip
    return out
