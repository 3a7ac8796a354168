"""An algorithmic canonical form: one representative per symmetry orbit, computed per network.

Two steps, each a group element (:class:`~symzoo.nets.symmetry.Transform`) built from the parameters and
composed into one Transform per network, applied with :func:`~symzoo.nets.symmetry.transform` (so the
function computed by the network never changes):

1. Scale / sign normalisation of every hidden unit, layer by layer from the input
   (:func:`normalizing_transform`):

   * ReLU (positive scaling): the unit's incoming vector (its incoming weights, conv kernels flattened over
     (in, kh, kw), and its bias, after the previous layer's normalisation) is divided by its Euclidean norm and
     the outgoing weights are multiplied by it. A unit whose incoming vector is exactly zero keeps scale 1.
   * tanh (sign flips): the unit is flipped so that its bias is positive. Tie rule: if the bias is exactly 0,
     the sign of the sum of its incoming weights (after the previous layer's flips) decides; if that is 0 too,
     the unit is left as it is.

2. Sorting the units of each hidden layer (:func:`sorting_transform`) by invariant keys of the normalised
   network: descending Euclidean norm of the unit's outgoing weights, ties broken by descending bias, then by
   descending sum of incoming weights, then by the current index (stable sort). These keys do not change
   under permutations of the other layers, so every element of an orbit sorts the same way.

The form is exact on generic networks. Degenerate units (zero incoming vector for ReLU, zero bias and zero
incoming sum for tanh, or two units of one layer with equal keys up to rounding) are fixed points of the rules
above but not of the group, and their orbit need not map to a single point.
"""

from __future__ import annotations

import torch

from symzoo.nets.functional import unflatten
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import Transform, compose, scaling_group, transform


def _batch(spec: NetSpec, thetas: torch.Tensor) -> tuple[int, ...]:
    if thetas.ndim < 1 or thetas.shape[-1] != spec.num_params:
        raise ValueError(f"expected parameters of shape (..., {spec.num_params}) for {spec}, got {tuple(thetas.shape)}")
    return tuple(thetas.shape[:-1])


def _identity(spec: NetSpec, batch: tuple[int, ...], thetas: torch.Tensor) -> tuple[list, list]:
    g = Transform.identity(spec, batch, thetas.device, thetas.dtype)
    return list(g.perms), list(g.scales)


def _incoming(w: torch.Tensor, nb: int) -> torch.Tensor:
    """Incoming weights (*batch, units, fan_in) of weights (*batch, units, in, [kh, kw])."""
    return w.reshape(*w.shape[: nb + 1], -1)


def _outgoing(w_next: torch.Tensor, nb: int) -> torch.Tensor:
    """Outgoing weights (*batch, units, fan_out) of the next layer's weights (*batch, out, units, [kh, kw])."""
    w = w_next.movedim(nb + 1, nb)
    return w.reshape(*w.shape[: nb + 1], -1)


def normalizing_transform(spec: NetSpec, thetas: torch.Tensor) -> Transform:
    """Step 1: the scale (ReLU) or sign (tanh) element that normalises every hidden unit; no permutation.

    ``thetas`` has shape (*batch, P); the Transform has batch dims ``batch``.
    """
    batch = _batch(spec, thetas)
    nb = len(batch)
    perms, scales = _identity(spec, batch, thetas)
    work = thetas.double()
    for layer in range(len(spec.widths)):
        # the layers below ``layer`` are already normalised, the ones from ``layer`` on still have scale 1
        current = transform(spec, work, Transform(tuple(perms), tuple(s.double() for s in scales)))
        w, b = unflatten(spec, current)[layer]
        incoming = _incoming(w, nb)
        if scaling_group(spec) == "positive":
            norm = torch.cat([incoming, b.unsqueeze(-1)], dim=-1).norm(dim=-1)
            scale = torch.where(norm > 0, 1.0 / torch.where(norm > 0, norm, 1.0), 1.0)
        else:
            key = torch.where(b != 0, b, incoming.sum(-1))
            scale = torch.where(key < 0, -1.0, 1.0).to(work.dtype)
        scales[layer] = scale.to(thetas.dtype)
    return Transform(tuple(perms), tuple(scales))


def sorting_transform(spec: NetSpec, thetas: torch.Tensor) -> Transform:
    """Step 2: the permutation that sorts the hidden units of (already normalised) ``thetas`` by invariant keys."""
    batch = _batch(spec, thetas)
    nb = len(batch)
    _, scales = _identity(spec, batch, thetas)
    layers = unflatten(spec, thetas)
    perms = []
    for layer in range(len(spec.widths)):
        w, b = layers[layer]
        # lexicographic (descending): outgoing norm, bias, incoming sum; stable sorts from the last key
        keys = (_outgoing(layers[layer + 1][0], nb).norm(dim=-1), b, _incoming(w, nb).sum(-1))
        order = torch.arange(spec.widths[layer], device=thetas.device).expand(*batch, -1)
        for key in reversed(keys):
            key = torch.take_along_dim(key, order, dim=-1)
            step = torch.sort(key, dim=-1, descending=True, stable=True).indices
            order = torch.take_along_dim(order, step, dim=-1)
        perms.append(order)
    return Transform(tuple(perms), tuple(scales))


def canonical_transform(spec: NetSpec, thetas: torch.Tensor) -> Transform:
    """The one group element per network (batch dims of ``thetas``) that maps it to its canonical form."""
    g_norm = normalizing_transform(spec, thetas)
    g_sort = sorting_transform(spec, transform(spec, thetas, g_norm))
    return compose(spec, g_norm, g_sort)


def canonical_form(spec: NetSpec, thetas: torch.Tensor) -> torch.Tensor:
    """Canonical parameters (*batch, P) of networks ``thetas`` (*batch, P); same functions, orbit-invariant."""
    return transform(spec, thetas, canonical_transform(spec, thetas))
