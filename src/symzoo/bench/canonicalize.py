"""``bench_canonicalize``: the autoencoder against Git Re-Basin, per pair, as networks grow.

For tanh MLPs 64 → h → h → 10 (``widths``: h from 16 to 1,024 by default, 1,130 to 1.1M parameters) and the
Small CNN Zoo CNN (4,970 parameters), three things are timed in turns (A, B, C, A, B, C, ...; medians of
``repeats`` rounds), on random networks of a trained zoo's scale:

- ``rebasin_s``: Git Re-Basin weight matching of one pair (:func:`symzoo.align.rebasin.align_pair`, CPU: it
  runs on scipy), the mean over ``REBASIN_PAIRS`` pairs (the number of sweeps it takes varies by pair);
- ``encode_decode_s``: encode + decode of one network (a batch of ``batch`` networks, divided), no gradients;
- ``train_step_s``: one training step's forward and backward per network (a batch of ``batch`` networks,
  divided), with a parameter-space reconstruction loss. The functional loss of the real training also runs
  the reconstructed networks on images, so this is a lower bound of the real step;
- ``align_s``: one network aligned on its own to its decoded latent (:func:`symzoo.align.rebasin.align_each`,
  the ``ae_align`` merge's per-network step; the same weight matching as Re-Basin's, against another target),
  the mean over ``REBASIN_PAIRS`` networks.

The encoder's cost per pair is two networks' encode + decode plus their share of its training:
``TRAIN_NETWORK_STEPS`` network-steps (the config's 300 epochs over the 2,560 train networks of the paper's
3,200-network MLP zoo) amortised over a zoo of ``zoo_size`` networks. Reported per width: those figures,
``encoder_s_per_pair`` and ``inference_s_per_pair`` (without the training), ``break_even_zoo`` (the zoo size
from which the trained encoder is cheaper per pair than Re-Basin; None where its inference alone is slower);
across the MLP widths: the crossover width (the smallest measured width from which on the encoder is faster per
pair, with and without the training; None: not within the widths; ``faster_widths``: every width where it is)
and the growth exponents, the log-log slopes
of each time against the parameter count, over all widths and over the three largest (small networks' times are
mostly fixed per-call costs, so the large ones show the growth).

The all-pairs view: merging every pair of a zoo of N networks costs N (N - 1) / 2 Re-Basin assignments pairwise,
but N (encode + decode + align) plus one training run through the decoder's frame (``ae_align``), or N alignments to
one reference without a decoder (``align_reference``). Per net: ``all_pairs_n`` (the N from which the decoder's
frame is cheaper, its training included), ``all_pairs_n_inference`` (without the training),
``all_pairs_n_reference`` (aligning to one reference), and the two costs at ``zoo_size`` networks
(``all_pairs_rebasin_s``, ``all_pairs_frame_s``).

The encoder is a ScaleGMN autoencoder of ``ARCHITECTURE`` (the size the merge benchmark used before: hidden 64,
4 layers, latent 128, bilinear messages); its decoder's output layer has 4 x latent x P weights, so memory and
time grow linearly in P (2.3 GB of weights at h = 1,024).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from symzoo.align.rebasin import align_each, align_pair
from symzoo.bench.encode import random_params
from symzoo.bench.timing import device_label, interleaved_medians
from symzoo.config import entry
from symzoo.models.autoencoder import Architecture, build_autoencoder
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec

WIDTHS = (16, 32, 64, 128, 256, 512, 1024)
ARCHITECTURE = {"kind": "scalegmn", "message": "bilinear", "hidden": 64, "layers": 4, "latent": 128, "dropout": 0.0}
REBASIN_PAIRS = 3
"""Pairs per Re-Basin call: its sweeps until convergence vary from pair to pair, so its time is their mean."""
TRAIN_NETWORK_STEPS = 300 * 2_560
"""Network-steps of one training run: 300 epochs over the train split (80%) of a 3,200-network zoo."""

COLUMNS = (
    "net",
    "params",
    "rebasin_s",
    "encode_decode_s",
    "train_step_s",
    "inference_s_per_pair",
    "encoder_s_per_pair",
    "encoder_over_rebasin",
    "break_even_zoo",
    "align_s",
    "all_pairs_n",
    "all_pairs_n_inference",
    "all_pairs_n_reference",
    "all_pairs_rebasin_s",
    "all_pairs_frame_s",
)


def mlp_spec(width: int) -> NetSpec:
    """The tanh MLP 64 → width → width → 10 of the width sweep."""
    return NetSpec("mlp", (1, 8, 8), (width, width), 10, "tanh")


def _contestants(spec: NetSpec, batch: int, device: torch.device) -> list[Callable[[], object]]:
    """Re-Basin on ``REBASIN_PAIRS`` pairs, encode + decode of ``batch`` networks, a training step on ``batch``
    networks, ``REBASIN_PAIRS`` networks each aligned to its decoded latent."""
    g = torch.Generator().manual_seed(0)
    pairs = random_params(spec, 2 * REBASIN_PAIRS, g).view(REBASIN_PAIRS, 2, -1)
    thetas = random_params(spec, batch, g).to(device)
    torch.manual_seed(0)
    model = build_autoencoder(spec, Architecture.from_options(entry("encoder", **ARCHITECTURE)), thetas).to(device)

    def rebasin() -> None:
        for a, b in pairs:
            align_pair(spec, a, b, "rebasin", generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def encode_decode() -> None:
        model.eval()(thetas)

    def train_step() -> None:
        model.train().zero_grad(set_to_none=True)
        (model(thetas) - thetas).square().mean().backward()

    singles = pairs[:, 0]
    with torch.no_grad():
        decoded = model.eval()(singles.to(device)).cpu()

    def align() -> None:
        align_each(spec, singles, decoded)

    contestants = [rebasin, encode_decode, train_step, align]
    for fn in contestants:
        fn()  # warm-up: lazy initialisation, allocator, first calls into scipy
    return contestants


def all_pairs_break_even(pair_s: float, network_s: float, fixed_s: float = 0.0) -> int:
    """The smallest zoo size N from which N (N - 1) / 2 pairwise costs ``pair_s`` exceed N per-network costs
    ``network_s`` plus a one-off ``fixed_s`` (beyond the larger root of
    pair_s / 2 N^2 - (pair_s / 2 + network_s) N - fixed_s)."""
    linear = pair_s / 2 + network_s
    return max(2, math.floor((linear + math.sqrt(linear**2 + 2 * pair_s * fixed_s)) / pair_s) + 1)


def _row(name: str, spec: NetSpec, seconds: Sequence[float], batch: int, zoo_size: int) -> dict:
    rebasin_s, encode_decode_s, train_step_s = seconds[0] / REBASIN_PAIRS, seconds[1] / batch, seconds[2] / batch
    align_s = seconds[3] / REBASIN_PAIRS
    train_s = TRAIN_NETWORK_STEPS * train_step_s  # one training run
    inference = 2 * encode_decode_s
    saving = rebasin_s - inference  # what each pair saves once the encoder is trained
    return {
        "net": name,
        "params": spec.num_params,
        "rebasin_s": rebasin_s,
        "encode_decode_s": encode_decode_s,
        "train_step_s": train_step_s,
        "inference_s_per_pair": inference,
        "encoder_s_per_pair": inference + 2 * train_s / zoo_size,
        "encoder_over_rebasin": (inference + 2 * train_s / zoo_size) / rebasin_s,
        "break_even_zoo": math.ceil(2 * train_s / saving) if saving > 0 else None,
        "align_s": align_s,
        "all_pairs_n": all_pairs_break_even(rebasin_s, encode_decode_s + align_s, train_s),
        "all_pairs_n_inference": all_pairs_break_even(rebasin_s, encode_decode_s + align_s),
        "all_pairs_n_reference": all_pairs_break_even(rebasin_s, align_s),
        "all_pairs_rebasin_s": zoo_size * (zoo_size - 1) / 2 * rebasin_s,
        "all_pairs_frame_s": zoo_size * (encode_decode_s + align_s) + train_s,
    }


def crossover_width(widths: Sequence[int], encoder: Sequence[float], rebasin: Sequence[float]) -> int | None:
    """The smallest width from which on (at it and every larger width) the encoder is faster; None if none."""
    faster = [e < r for e, r in zip(encoder, rebasin)]
    for i, width in enumerate(widths):
        if all(faster[i:]):
            return width
    return None


def faster_widths(widths: Sequence[int], encoder: Sequence[float], rebasin: Sequence[float]) -> list[int]:
    """The widths at which the encoder is faster than Re-Basin (the crossover needs all larger ones too)."""
    return [width for width, e, r in zip(widths, encoder, rebasin) if e < r]


def growth_exponent(params: Sequence[int], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(seconds) against log(params): time ~ params ** exponent."""
    return float(np.polyfit(np.log(params), np.log(seconds), 1)[0])


def bench_canonicalize(
    device: torch.device,
    widths: Sequence[int] = WIDTHS,
    repeats: int = 5,
    batch: int = 2,
    zoo_size: int = 3_200,
    cnn: bool = True,
) -> dict:
    """The table (``rows``, one per MLP width, then the CNN), the crossover widths and the growth exponents;
    see the module docstring. ``widths`` at least two, increasing."""
    widths = tuple(widths)
    if len(widths) < 2 or list(widths) != sorted(set(widths)) or widths[0] < 1:
        raise ValueError(f"canonicalize: widths must be two or more increasing positive integers, got {widths}")
    if repeats < 1 or batch < 1 or zoo_size < 1:
        raise ValueError(f"canonicalize: repeats, batch and zoo_size must be positive ({repeats}, {batch}, {zoo_size})")
    device = torch.device(device)
    nets = [(f"mlp h={w}", mlp_spec(w)) for w in widths] + ([("small cnn zoo", small_cnn_zoo_spec())] if cnn else [])
    rows = []
    for name, spec in nets:
        seconds = interleaved_medians(_contestants(spec, batch, device), device, min_rounds=repeats)
        rows.append(_row(name, spec, seconds, batch, zoo_size))
    mlp = rows[: len(widths)]

    def column(key: str) -> list[float]:
        return [row[key] for row in mlp]

    return {
        "device": device_label(device),
        "architecture": ARCHITECTURE,
        "zoo_size": zoo_size,
        "train_network_steps": TRAIN_NETWORK_STEPS,
        "repeats": repeats,
        "columns": list(COLUMNS),
        "rows": rows,
        "crossover_width": crossover_width(widths, column("encoder_s_per_pair"), column("rebasin_s")),
        "crossover_width_inference": crossover_width(widths, column("inference_s_per_pair"), column("rebasin_s")),
        "faster_widths": faster_widths(widths, column("encoder_s_per_pair"), column("rebasin_s")),
        "faster_widths_inference": faster_widths(widths, column("inference_s_per_pair"), column("rebasin_s")),
        "exponents": exponents(mlp),
        "exponents_largest_3": exponents(mlp[-3:]),
    }


def exponents(rows: Sequence[dict]) -> dict[str, float]:
    """The growth exponent of each time of ``rows`` (see :func:`growth_exponent`)."""
    params = [row["params"] for row in rows]
    return {name: growth_exponent(params, [row[f"{name}_s"] for row in rows]) for name in TIMES}


TIMES = ("rebasin", "encode_decode", "train_step", "align")
