"""Git Re-Basin weight matching (Ainsworth et al. 2023) for MLPs and CNNs, extended to the scaling group.

:func:`weight_matching` finds a group element g (one permutation per hidden layer, optionally a sign or scale
per unit) such that ``transform(spec, theta_b, g)`` is close to ``theta_a``: it maximises the inner product
<theta_a, transform(theta_b, g)> (for permutations and sign flips ||transform(theta_b, g)|| is constant, so this
minimises the distance) by coordinate ascent. Each sweep visits the hidden layers in random order; for hidden
layer l, with every other layer's element fixed, it solves a linear assignment
(``scipy.optimize.linear_sum_assignment(C, maximize=True)``) on

    C[i, j] = <W_l^a[i], W_l^b[j]> + b_l^a[i] b_l^b[j] + <W_{l+1}^a[:, i], W_{l+1}^b[:, j]>

where b's incoming weights carry the previous layer's current element and its outgoing weights the next
layer's (both obtained by applying the current element, with layer l's part reset to the identity, through
:func:`~symzoo.nets.symmetry.transform`); conv kernels are flattened over (in, kh, kw) / (out, kh, kw).
It stops when a sweep gains no more than ``tol`` or after ``max_sweeps`` sweeps.

``scaling=True`` extends the match to the activation's scaling group:

* tanh (sign flips): the assignment is solved on |C| and unit i takes the sign of its chosen entry
  C[i, perm[i]] (0 counts as +); the signs enter C of the neighbouring layers in later sweeps. theta_a is
  unchanged.
* ReLU (positive scaling): scale normalisation. Both networks are first brought to a canonical scale
  (:func:`symzoo.align.canonical.normalizing_transform`: unit norm of each hidden unit's incoming
  weights+bias, layer by layer from the input), then matched by permutations. The returned element composes
  b's normalisation with the permutation, so ``transform(theta_b, g)`` is close to the NORMALISED theta_a
  (a's inverse normalisation is not applied). :func:`align_pair` returns both normalised networks.

Every alignment is a group element, so the functions of both networks never change.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from symzoo.align import METHODS
from symzoo.align.canonical import canonical_form, canonical_transform, normalizing_transform, sorting_transform
from symzoo.nets.functional import unflatten
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import Transform, compose, scaling_group, transform

Method = Literal["naive", "rebasin", "rebasin_scaling", "canonical"]


def _check_pair(spec: NetSpec, theta_a: torch.Tensor, theta_b: torch.Tensor) -> None:
    for name, theta in (("theta_a", theta_a), ("theta_b", theta_b)):
        if tuple(theta.shape) != (spec.num_params,):
            raise ValueError(f"{name} must have shape ({spec.num_params},) for {spec}, got {tuple(theta.shape)}")


def _units_first(w: torch.Tensor, axis: int) -> torch.Tensor:
    """(units, rest) view of a weight tensor with the unit axis ``axis`` (0: outputs, 1: inputs)."""
    return w.movedim(axis, 0).reshape(w.shape[axis], -1)


def _cost(spec: NetSpec, a_layers: list, b_layers: list, layer: int) -> torch.Tensor:
    """C (width, width) of hidden layer ``layer`` between a and the current b (layer's own element = identity)."""
    (wa, ba), (wb, bb) = a_layers[layer], b_layers[layer]
    wa_next, wb_next = a_layers[layer + 1][0], b_layers[layer + 1][0]
    incoming = _units_first(wa, 0) @ _units_first(wb, 0).T
    outgoing = _units_first(wa_next, 1) @ _units_first(wb_next, 1).T
    return incoming + torch.outer(ba, bb) + outgoing


def _objective(theta_a: torch.Tensor, theta_b: torch.Tensor, spec: NetSpec, g: Transform) -> float:
    return float(torch.dot(theta_a, transform(spec, theta_b, g)))


def _with_layer_reset(g_perms: list, g_scales: list, layer: int) -> Transform:
    perms, scales = list(g_perms), list(g_scales)
    perms[layer] = torch.arange(len(perms[layer]))
    scales[layer] = torch.ones(len(scales[layer]), dtype=torch.float64)
    return Transform(tuple(perms), tuple(scales))


def _match(
    spec: NetSpec,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    signs: bool,
    max_sweeps: int,
    tol: float,
    generator: torch.Generator,
    history: list[float] | None,
) -> Transform:
    """Coordinate ascent over permutations (and signs) of float64 ``theta_a``, ``theta_b`` on the CPU."""
    hidden = len(spec.widths)
    perms = [torch.arange(w) for w in spec.widths]
    scales = [torch.ones(w, dtype=torch.float64) for w in spec.widths]
    a_layers = unflatten(spec, theta_a)
    best = _objective(theta_a, theta_b, spec, Transform(tuple(perms), tuple(scales)))
    if history is not None:
        history.append(best)
    for _ in range(max_sweeps):
        for layer in torch.randperm(hidden, generator=generator).tolist():
            b_current = transform(spec, theta_b, _with_layer_reset(perms, scales, layer))
            cost = _cost(spec, a_layers, unflatten(spec, b_current), layer).numpy()
            _, cols = linear_sum_assignment(np.abs(cost) if signs else cost, maximize=True)
            perms[layer] = torch.from_numpy(cols).long()
            if signs:
                chosen = cost[np.arange(len(cols)), cols]
                scales[layer] = torch.from_numpy(np.where(chosen < 0, -1.0, 1.0))
        value = _objective(theta_a, theta_b, spec, Transform(tuple(perms), tuple(scales)))
        if history is not None:
            history.append(value)
        gain, best = value - best, value
        if gain <= tol:
            break
    return Transform(tuple(perms), tuple(scales))


def weight_matching(
    spec: NetSpec,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    scaling: bool = False,
    max_sweeps: int = 100,
    tol: float = 1e-12,
    generator: torch.Generator | None = None,
    history: list[float] | None = None,
) -> Transform:
    """The group element g with ``transform(spec, theta_b, g)`` matched to ``theta_a`` (flat (P,) parameters).

    ``scaling``: also match the activation's scaling group (tanh: sign flips; ReLU: scale normalisation, in
    which case g maps b onto the normalised a, see the module docstring and :func:`align_pair`).
    ``generator`` draws the random layer order of each sweep (None: a generator seeded with 0, so the result
    is reproducible). ``history``, when given, receives the objective <a, transform(b, g)> (float64; for ReLU
    with scaling, of the normalised networks) before the first sweep and after every sweep: it never decreases.
    The returned Transform has no batch dims; perms are int64, scales have theta_b's dtype, on theta_b's device.
    """
    _check_pair(spec, theta_a, theta_b)
    if max_sweeps < 0:
        raise ValueError(f"max_sweeps must be >= 0, not {max_sweeps}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    a = theta_a.detach().to("cpu", torch.float64)
    b = theta_b.detach().to("cpu", torch.float64)
    positive = scaling and scaling_group(spec) == "positive"
    if positive:
        a = transform(spec, a, normalizing_transform(spec, a))
        g_norm = normalizing_transform(spec, b)
        b = transform(spec, b, g_norm)
    g = _match(spec, a, b, scaling and not positive, max_sweeps, tol, generator, history)
    if positive:
        g = compose(spec, g_norm, g)
    return Transform(
        tuple(p.to(theta_b.device) for p in g.perms),
        tuple(s.to(theta_b.device, theta_b.dtype) for s in g.scales),
    )


def stack_elements(elements: list[Transform]) -> Transform:
    """One Transform with batch dim N from N unbatched ones."""
    return Transform(
        tuple(torch.stack([g.perms[i] for g in elements]) for i in range(len(elements[0].perms))),
        tuple(torch.stack([g.scales[i] for g in elements]) for i in range(len(elements[0].scales))),
    )


def match_each(
    spec: NetSpec, thetas: torch.Tensor, references: torch.Tensor, signs: bool | None = None, seed: int = 0
) -> Transform:
    """Per network, the element matching ``thetas[i]`` (N, P) to its own reference ``references[i]`` (N, P), or
    all to one reference (P,): :func:`weight_matching` with permutations, and sign flips when ``signs`` (default:
    when the activation's scaling group is the sign, i.e. Re-Basin's group). One assignment problem per network,
    so a zoo costs N, not the N (N - 1) / 2 of all its pairs. Returns a Transform with batch dim N (CPU, float64).

    Every match starts from the network's canonical form within that group (units sorted by invariant keys,
    :func:`symzoo.align.canonical.sorting_transform`, after the sign normalisation when ``signs``), not from the
    network as it is labelled: weight matching is a local search, and started from the labelling it lands members
    of one orbit in different local optima. From the canonical form, every member of an orbit (of a generic
    network) gets the same result, so the aligned network is a function of the orbit and the reference alone.
    """
    if thetas.ndim != 2:
        raise ValueError(f"match_each: expected networks (N, {spec.num_params}), got {tuple(thetas.shape)}")
    thetas = thetas.detach().to("cpu", torch.float64)
    references = references.detach().to("cpu", torch.float64).expand_as(thetas)
    if not len(thetas):
        return Transform.identity(spec, (0,), dtype=thetas.dtype)
    signs = scaling_group(spec) == "sign" if signs is None else signs
    sign_group = signs and scaling_group(spec) == "sign"
    start = canonical_transform(spec, thetas) if sign_group else sorting_transform(spec, thetas)
    matched = [
        weight_matching(spec, ref, theta, scaling=signs, generator=torch.Generator().manual_seed(seed))
        for theta, ref in zip(transform(spec, thetas, start), references)
    ]
    return compose(spec, start, stack_elements(matched))


def align_each(spec: NetSpec, thetas: torch.Tensor, references: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Networks ``thetas`` (N, P), each moved by its group element of :func:`match_each` (Re-Basin's group) onto
    its reference (``references`` (N, P), or one (P,) for all): the same functions, in the references' frame."""
    g = match_each(spec, thetas, references, seed=seed)
    return transform(spec, thetas.detach().to("cpu", torch.float64), g).to(thetas.device, thetas.dtype)


def align_pair(
    spec: NetSpec,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    method: Method = "rebasin",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two networks (theta_a', theta_b') to interpolate between for a merging ``method``.

    * ``naive``: both unchanged.
    * ``rebasin``: a unchanged, b permuted onto a (:func:`weight_matching`).
    * ``rebasin_scaling``: tanh: a unchanged, b permuted and sign-flipped onto a; ReLU: both scale-normalised,
      b's normalised version permuted onto a's normalised version.
    * ``canonical``: both in their algorithmic canonical form (:func:`symzoo.align.canonical.canonical_form`).

    Every output computes the same function as its input.
    """
    _check_pair(spec, theta_a, theta_b)
    if method == "naive":
        return theta_a, theta_b
    if method == "canonical":
        return canonical_form(spec, theta_a), canonical_form(spec, theta_b)
    if method not in ("rebasin", "rebasin_scaling"):
        raise ValueError(f"alignment method must be one of {METHODS}, not {method!r}")
    scaling = method == "rebasin_scaling"
    g = weight_matching(spec, theta_a, theta_b, scaling=scaling, generator=generator)
    if scaling and scaling_group(spec) == "positive":
        theta_a = transform(spec, theta_a, normalizing_transform(spec, theta_a))
    return theta_a, transform(spec, theta_b, g)
