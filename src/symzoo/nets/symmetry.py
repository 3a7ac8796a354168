"""The symmetry group of a network's parameters: hidden-unit permutations and scalings, and its action.

A group element acts on every hidden layer l (units or channels): unit i of the transformed network is
unit ``perm[i]`` of the original, scaled by ``scale[i]``. The outgoing weights are permuted the same way
and divided by the scale, so the function is unchanged whenever act(s * z) = s * act(z):
positive s for ReLU, s = +-1 for tanh and sine (odd functions: a SIREN's sin(w0 (W h + b)) flips sign with
the row of W and b, whatever w0). Global average pooling is linear, so CNN
channels transform exactly like MLP neurons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from symzoo.nets.functional import flatten, unflatten
from symzoo.nets.spec import NetSpec

TransformKind = Literal["permutation", "scaling", "both"]


@dataclass(frozen=True)
class Transform:
    """One group element per network: a permutation and a scale vector for every hidden layer.

    Each tensor has shape (*batch, width); ``batch`` matches the leading dims of the parameters
    it acts on (empty for one network).
    """

    perms: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...]

    @classmethod
    def identity(
        cls,
        spec: NetSpec,
        batch: tuple[int, ...] = (),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Transform:
        """The identity element (one per batch entry)."""
        return cls(
            tuple(torch.arange(w, device=device).expand(*batch, w) for w in spec.widths),
            tuple(torch.ones(*batch, w, device=device, dtype=dtype) for w in spec.widths),
        )


def scaling_group(spec: NetSpec) -> str:
    """The activation's scaling symmetry: sign flips for tanh and sine (odd), positive scaling for ReLU."""
    return {"tanh": "sign", "sine": "sign", "relu": "positive"}[spec.activation]


def random_transform(
    spec: NetSpec,
    kind: TransformKind = "both",
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


# group operations on elements (they never touch parameters: applying an element is `transform`)


def _check(spec: NetSpec, g: Transform, name: str) -> None:
    if len(g.perms) != len(spec.widths) or len(g.scales) != len(spec.widths):
        raise ValueError(f"{name} has {len(g.perms)} layers, the spec has {len(spec.widths)} hidden layers")
    for layer, (perm, scale, width) in enumerate(zip(g.perms, g.scales, spec.widths, strict=True)):
        if perm.shape[-1] != width or scale.shape[-1] != width:
            raise ValueError(f"{name}: layer {layer} has width {perm.shape[-1]}, the spec says {width}")


def compose(spec: NetSpec, g1: Transform, g2: Transform) -> Transform:
    """The element "apply ``g1``, then ``g2``": transform(transform(theta, g1), g2) == transform(theta, compose).

    After g1, unit j is old unit p1[j] scaled by s1[j]; after g2, unit i is g1-unit p2[i] scaled by s2[i],
    i.e. old unit p1[p2[i]] scaled by s1[p2[i]] * s2[i].
    """
    _check(spec, g1, "g1")
    _check(spec, g2, "g2")
    perms, scales = [], []
    for p1, s1, p2, s2 in zip(g1.perms, g1.scales, g2.perms, g2.scales, strict=True):
        p1, p2 = torch.broadcast_tensors(p1, p2.to(p1.device))
        s1, s2 = torch.broadcast_tensors(s1, s2.to(s1.device))
        perms.append(torch.take_along_dim(p1, p2, dim=-1))
        scales.append(torch.take_along_dim(s1, p2.to(s1.device), dim=-1) * s2)
    return Transform(tuple(perms), tuple(scales))


def inverse(spec: NetSpec, g: Transform) -> Transform:
    """The element h with compose(g, h) == compose(h, g) == identity."""
    _check(spec, g, "g")
    perms, scales = [], []
    for p, s in zip(g.perms, g.scales, strict=True):
        q = torch.argsort(p, dim=-1)
        perms.append(q)
        scales.append(1.0 / torch.take_along_dim(s, q.to(s.device), dim=-1))
    return Transform(tuple(perms), tuple(scales))
