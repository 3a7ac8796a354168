"""Orbit experiment: each network interpolated with a random symmetry transform of itself.

Both ends compute the same function, so any barrier is an artefact of the representation: naive
interpolation shows one, an exactly invariant autoencoder (and an exact canonical form) gives a flat curve.

The INR protocol of the paper (``copies`` >= 2, ``noise`` > 0): each network gets ``copies`` copies, each
transformed by its own random group element and perturbed by N(0, noise^2) on every parameter; copy i is paired
with copy i + 1. With ``copies`` = 1 the pair is (network, transformed copy), the copy perturbed when ``noise``
> 0. INR curves are scored against the network's ground-truth image (``truth``). The ``task`` column (the zoo's
``spec.task``: ``inr`` or ``classification``) says how ``loss``, ``score`` and ``dist_a`` / ``dist_b`` read
(:mod:`symzoo.merge.interpolate`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from symzoo.data.zoo import Zoo
from symzoo.merge.interpolate import alphas, curves_table, originals_table, top_test_networks
from symzoo.merge.methods import endpoints
from symzoo.models.autoencoder import Autoencoder
from symzoo.nets.symmetry import random_transform, transform


def orbit_curves(
    zoo: Zoo,
    x: torch.Tensor,
    y: torch.Tensor,
    methods: dict[str, Autoencoder | None],
    kinds: list[str],
    networks: int,
    n_alphas: int,
    seed: int = 0,
    medoid: torch.Tensor | None = None,
    noise: float = 0.0,
    copies: int = 1,
    truth: Callable[[np.ndarray], torch.Tensor] | None = None,
) -> pl.DataFrame:
    """Curves (method, kind, pair_id, alpha, loss, score, ...) from theta to g . theta for the ``networks``
    best test networks, one random g per network and kind (``methods``: name → autoencoder or None; the
    ``medoid`` method needs the ``medoid`` network); ``noise`` and ``copies``: see the module docstring.
    For an INR zoo ``truth(ids)`` gives the networks' ground-truth images (n, pixels) and ``y`` is unused."""
    ids = top_test_networks(zoo.models, networks, zoo.spec.task)
    if len(ids) < networks:
        raise ValueError(
            f"merge.orbit.networks = {networks}, but zoo {zoo.root} has {len(ids)} kept test-split networks: "
            f"set it to at most {len(ids)} or grow the zoo"
        )
    if copies < 1:
        raise ValueError(f"merge.orbit.copies must be >= 1, not {copies}")
    n_pairs = max(copies - 1, 1)
    pair_ids = np.repeat(ids, n_pairs)
    pairs = pl.DataFrame({"pair_id": range(len(pair_ids)), "model_a": pair_ids, "model_b": pair_ids})
    theta = zoo.tensor(ids, x.device)
    if zoo.spec.is_inr:
        if truth is None:
            raise ValueError("orbit_curves: an INR zoo needs the networks' ground-truth images (truth)")
        y = truth(pair_ids).to(x.device).expand(2, -1, -1)
    alpha = alphas(n_alphas)
    frames = []
    for k, kind in enumerate(kinds):
        generator = torch.Generator().manual_seed(seed + k)
        if copies == 1:
            g = random_transform(zoo.spec, kind, (len(ids),), generator)
            ends = [theta, _perturbed(transform(zoo.spec, theta, g), noise, generator)]
        else:
            g = random_transform(zoo.spec, kind, (copies, len(ids)), generator)
            moved = _perturbed(transform(zoo.spec, theta.expand(copies, -1, -1), g), noise, generator)
            ends = [moved[:-1].transpose(0, 1).flatten(0, 1), moved[1:].transpose(0, 1).flatten(0, 1)]
        originals = originals_table(zoo.spec, pairs, *ends, x, y)
        for method, ae in methods.items():
            a, b = endpoints(method, zoo.spec, *ends, ae, medoid, seed)
            frame = curves_table(zoo.spec, pairs, a, b, *ends, alpha, x, y, originals)
            frames.append(frame.with_columns(pl.lit(method).alias("method"), pl.lit(kind).alias("kind")))
    return pl.concat(frames)


def _perturbed(theta: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    """``theta`` + N(0, noise^2) on every parameter (unchanged, and no draw, for ``noise`` = 0)."""
    if noise == 0:
        return theta
    return theta + noise * torch.randn(theta.shape, generator=generator).to(theta.device, theta.dtype)
