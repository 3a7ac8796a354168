"""Orbit experiment: each network interpolated with a random symmetry transform of itself.

Both ends compute the same function, so any barrier is an artefact of the representation: naive
interpolation shows one, an exactly invariant autoencoder (and an exact canonical form) gives a flat curve.
"""

from __future__ import annotations

import polars as pl
import torch

from symzoo.data.zoo import Zoo
from symzoo.merge.interpolate import alphas, curves_table, top_test_networks
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
) -> pl.DataFrame:
    """Curves (method, kind, pair_id, alpha, loss, accuracy, ...) from theta to g . theta for the ``networks``
    best test networks, one random g per network and kind (``methods``: name → autoencoder or None; the
    ``medoid`` method needs the ``medoid`` network)."""
    ids = top_test_networks(zoo.models, networks)
    if len(ids) < networks:
        raise ValueError(
            f"merge.orbit.networks = {networks}, but zoo {zoo.root} has {len(ids)} kept test-split networks: "
            f"set it to at most {len(ids)} or grow the zoo"
        )
    pairs = pl.DataFrame({"pair_id": range(len(ids)), "model_a": ids, "model_b": ids})
    theta = zoo.tensor(ids, x.device)
    alpha = alphas(n_alphas)
    frames = []
    for k, kind in enumerate(kinds):
        g = random_transform(zoo.spec, kind, (len(ids),), torch.Generator().manual_seed(seed + k))
        moved = transform(zoo.spec, theta, g)
        for method, ae in methods.items():
            a, b = endpoints(method, zoo.spec, theta, moved, ae, medoid, seed)
            frame = curves_table(zoo.spec, pairs, a, b, theta, moved, alpha, x, y)
            frames.append(frame.with_columns(pl.lit(method).alias("method"), pl.lit(kind).alias("kind")))
    return pl.concat(frames)
