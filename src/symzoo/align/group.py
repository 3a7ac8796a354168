"""Generic helpers on symmetry group elements (:class:`symzoo.nets.symmetry.Transform`).

A Transform maps hidden unit i of layer l to old unit ``perms[l][i]`` scaled by ``scales[l][i]``. Both helpers
work on batched elements (leading dims shared by every tensor) and never touch network parameters: applying a
group element is always :func:`symzoo.nets.symmetry.transform`.
"""

from __future__ import annotations

import torch

from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import Transform


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
