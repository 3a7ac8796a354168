"""Symmetry group actions on flat parameters: hidden-unit permutations and scalings.

A group element acts on every hidden layer l (units or channels): unit i of the transformed network is
unit ``perm[i]`` of the original, scaled by ``scale[i]``. The outgoing weights are permuted the same way
and divided by the scale, so the function is unchanged whenever act(s * z) = s * act(z):
positive s for ReLU, s = +-1 for tanh (an odd function). Global average pooling is linear, so CNN
channels transform exactly like MLP neurons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from symzoo.nets.functional import flatten, unflatten
from symzoo.nets.spec import NetSpec

Kind = Literal["permutation", "scaling", "both"]


@dataclass(frozen=True)
class Transform:
    """One group element per network: a permutation and a scale vector for every hidden layer.

    Each tensor has shape (*batch, width); ``batch`` matches the leading dims of the parameters
    it acts on (empty for one network).
    """

    perms: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...]

    @classmethod
    def identity(cls, spec: NetSpec, batch: tuple[int, ...] = ()) -> Transform:
        return cls(
            tuple(torch.arange(w).expand(*batch, w) for w in spec.widths),
            tuple(torch.ones(*batch, w) for w in spec.widths),
        )


def scaling_group(spec: NetSpec) -> str:
    """The activation's scaling symmetry: sign flips for tanh, positive scaling for ReLU."""
    return {"tanh": "sign", "relu": "positive"}[spec.activation]


def random_transform(
    spec: NetSpec,
    kind: Kind = "both",
    batch: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
    max_log_scale: float = 1.0,
) -> Transform:
    """A random element of the network's symmetry group (of the given kind), one per batch entry.

    Positive scales are log-uniform in [exp(-max_log_scale), exp(max_log_scale)]; signs are uniform.
    """
    perms, scales = [], []
    for width in spec.widths:
        if kind in ("permutation", "both"):
            perms.append(torch.rand(*batch, width, generator=generator).argsort(dim=-1))
        else:
            perms.append(torch.arange(width).expand(*batch, width))
        u = torch.rand(*batch, width, generator=generator)
        if kind == "permutation":
            scales.append(torch.ones(*batch, width))
        elif scaling_group(spec) == "sign":
            scales.append(torch.where(u < 0.5, -1.0, 1.0))
        else:
            scales.append(torch.exp((2 * u - 1) * max_log_scale))
    return Transform(tuple(perms), tuple(scales))


def _along(index: torch.Tensor, ndim: int, dim: int) -> torch.Tensor:
    """Reshape a (*batch, n) tensor so it broadcasts against a (*batch, ...) tensor of ``ndim`` dims along ``dim``."""
    batch = index.shape[:-1]
    shape = [1] * (ndim - len(batch))
    shape[dim - len(batch)] = index.shape[-1]
    return index.reshape(*batch, *shape)


def transform(spec: NetSpec, theta: torch.Tensor, g: Transform) -> torch.Tensor:
    """Apply the group element ``g`` to flat parameters ``theta`` (*batch, P); returns new parameters."""
    layers = [list(wb) for wb in unflatten(spec, theta)]
    nb = theta.ndim - 1
    for layer, (perm, scale) in enumerate(zip(g.perms, g.scales, strict=True)):
        perm, scale = perm.to(theta.device), scale.to(theta.device, theta.dtype)
        w, b = layers[layer]
        rows = _along(perm, w.ndim, nb)
        layers[layer] = [
            torch.take_along_dim(w, rows, dim=nb) * _along(scale, w.ndim, nb),
            torch.take_along_dim(b, perm, dim=nb) * scale,
        ]
        w_next = layers[layer + 1][0]
        cols = _along(perm, w_next.ndim, nb + 1)
        layers[layer + 1][0] = torch.take_along_dim(w_next, cols, dim=nb + 1) / _along(scale, w_next.ndim, nb + 1)
    return flatten(layers)
