"""Representations of a zoo for generative models: function-preserving group elements applied per network.

Each representation maps a network θ to ``g · θ`` for a group element g of its own (:mod:`symzoo.nets.symmetry`),
so the represented network computes θ's function and ``g⁻¹ · (g · θ)`` recovers θ (:func:`restore`):

- ``raw``: the identity;
- ``aligned``: θ matched to one reference network (the train medoid) by weight matching
  (:func:`symzoo.align.rebasin.weight_matching`: permutations, with sign flips for tanh);
- ``normalized``: the canonical scale of every hidden unit first (:func:`symzoo.align.canonical.normalizing_transform`:
  ReLU, each unit's incoming weights and bias to unit norm, the inverse scale into its outgoing weights; tanh, the
  sign that makes its bias positive), then permutations matched to the reference's normalised form. For ReLU
  networks every hidden unit's incoming vector then lies on a unit sphere: the product-of-spheres geometry of a
  Riemannian flow (:func:`symzoo.fit.flow.sphere_blocks`).

Aligning to one reference takes one assignment problem per network (not per pair).
"""

from __future__ import annotations

import torch

from symzoo.align.canonical import normalizing_transform
from symzoo.align.rebasin import match_each
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import Transform, compose, inverse, scaling_group, transform

REPRESENTATIONS = ("raw", "aligned", "normalized")


def represent(
    spec: NetSpec, thetas: torch.Tensor, reference: torch.Tensor, kind: str, seed: int = 0
) -> tuple[torch.Tensor, Transform]:
    """The representation ``kind`` of networks ``thetas`` (N, P) against ``reference`` (P,): the represented
    networks (N, P) and the group elements (batch N) that made them."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {REPRESENTATIONS}, not {kind!r}")
    thetas = thetas.detach().to("cpu", torch.float64)
    g = Transform.identity(spec, (len(thetas),), dtype=thetas.dtype)
    if kind == "raw" or not len(thetas):
        return thetas.float(), g
    reference = reference.detach().to("cpu", torch.float64)
    if kind == "normalized":
        g = normalizing_transform(spec, thetas)
        reference = transform(spec, reference, normalizing_transform(spec, reference))
    signs = kind == "aligned" and scaling_group(spec) == "sign"
    g = compose(spec, g, match_each(spec, transform(spec, thetas, g), reference, signs, seed))
    return transform(spec, thetas, g).float(), g


def restore(spec: NetSpec, represented: torch.Tensor, g: Transform) -> torch.Tensor:
    """The original networks of ``represented`` (N, P): ``g⁻¹ · represented``."""
    return transform(spec, represented.double(), inverse(spec, g)).to(represented.dtype)
