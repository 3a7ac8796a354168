"""The training step of a population: every network's gradient at once, ``vmap(grad_and_value(loss))``.

``loss`` is the cross-entropy of :func:`symzoo.nets.functional.forward` plus the network's L2 coefficient
times its summed squared weights (biases excluded, like a Keras ``kernel_regularizer``), over the stacked flat
parameters (M, P).

Eager ``vmap`` pays functorch's dispatch cost at every step. The optimisation, on by default
(``trace=True``): trace the step once into a graph of aten ops (``make_fx``), rewrite it
(:mod:`symzoo.zoo.fx_rewrite`), check it against eager ``vmap`` on an example, and run the graph. If tracing
or the check fails the step falls back to eager ``vmap`` with a warning; :attr:`Step.traced` says which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from symzoo.nets.functional import forward
from symzoo.nets.spec import NetSpec
from symzoo.zoo.fx_rewrite import HoistedViews, rewrite

log = logging.getLogger(__name__)


def weight_mask(spec: NetSpec, device: str | torch.device = "cpu") -> torch.Tensor:
    """(P,) float32: 1 on weights, 0 on biases (the entries the L2 penalty covers)."""
    mask = torch.zeros(spec.num_params, device=device)
    for t in spec.layout:
        if t.name.endswith(".weight"):
            mask[t.offset : t.stop] = 1
    return mask


def make_loss(spec: NetSpec, wmask: torch.Tensor, dropout: bool = True, l2: bool = True, l1: float = 0.0) -> Callable:
    """loss(theta, xb, yb, masks, l2) → (CE + l2 * sum of squared weights + l1 * sum of |parameters|, CE) of one
    network.

    ``dropout`` / ``l2`` False drop the masks / the penalty (exactly what a rate / coefficient of 0 gives). ``l1``
    (one coefficient for the population; 0: none) adds the L1 norm of all parameters, biases included: the
    fine-tuning objective of the amortisation paper (:mod:`symzoo.fit.finetune`).
    """

    def loss(theta, xb, yb, masks, l2_coef):
        logits = forward(spec, theta, xb, masks if dropout else None)
        # = F.cross_entropy(logits, yb); logsumexp is faster than log_softmax over 10 classes on the CPU, and
        # this skips cross_entropy's ignore_index bookkeeping (a dozen ops per step)
        ce = (logits.logsumexp(-1) - logits.gather(-1, yb.unsqueeze(-1)).squeeze(-1)).mean()
        objective = ce + l2_coef * (theta.square() * wmask).sum() if l2 else ce
        if l1:
            objective = objective + l1 * theta.abs().sum()
        return objective, ce

    return loss


@dataclass(frozen=True)
class Step:
    """step(theta (M, P), xb (M, B, ...), yb (M, B), l2 (M,), *masks (M, B, *shape)) → (grads (M, P), CE (M,)).

    ``graph``: the traced and rewritten graph the step runs, or None when it runs eager ``vmap``.
    """

    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    graph: torch.fx.GraphModule | None = None

    @property
    def traced(self) -> bool:
        return self.graph is not None

    def __call__(self, theta: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fn(theta, *inputs)


_STEPS: dict[tuple, Step] = {}


def build_step(
    spec: NetSpec,
    m: int,
    batch_size: int,
    dropout: bool,
    l2: bool,
    device: str | torch.device = "cpu",
    compile: bool = False,
    trace: bool = True,
    l1: float = 0.0,
) -> Step:
    """The step of ``m`` networks of ``spec`` on batches of ``batch_size`` (see :class:`Step`).

    ``dropout`` / ``l2`` False: a step without masks / penalty (for populations where every rate /
    coefficient is 0). ``trace``: run ``vmap(grad_and_value(loss))`` (:func:`make_loss`) traced once into a
    graph of aten ops and rewritten (:func:`symzoo.zoo.fx_rewrite.rewrite`), with the parameters' views
    hoisted out of it (:class:`symzoo.zoo.fx_rewrite.HoistedViews`); this removes most of functorch's
    per-step dispatch cost. The arithmetic is eager ``vmap``'s, up to float rounding. Falls back to eager
    ``vmap`` (with a warning) if tracing fails. ``compile``: also ``torch.compile`` the step. Cached per shape,
    device and flags.
    """
    device = torch.device(device)
    key = (spec, m, batch_size, dropout, l2, str(device), compile, trace, l1)
    if key in _STEPS:
        return _STEPS[key]
    grad_fn = torch.func.vmap(
        torch.func.grad_and_value(make_loss(spec, weight_mask(spec, device), dropout, l2, l1), has_aux=True)
    )

    def flat(theta, xb, yb, l2_coef, *masks):
        grads, (_, ce) = grad_fn(theta, xb, yb, list(masks), l2_coef)
        return grads, ce

    step = _traced(spec, m, batch_size, dropout, device, compile, flat) if trace else Step(flat)
    if compile:  # on a GPU: CUDA graphs, one launch per step instead of one per kernel
        mode = "reduce-overhead" if device.type == "cuda" else None
        step = Step(torch.compile(step.fn, dynamic=False, mode=mode), step.graph)
    _STEPS[key] = step
    return step


def _traced(
    spec: NetSpec, m: int, batch_size: int, dropout: bool, device: torch.device, compile: bool, flat: Callable
) -> Step:
    """``flat`` traced, rewritten and checked on random example inputs; ``Step(flat)`` if any of that fails."""
    g = torch.Generator().manual_seed(0)
    example = tuple(
        t.to(device)
        for t in (
            torch.randn(m, spec.num_params, generator=g) * 0.1,
            torch.randn(m, batch_size, *spec.input_shape, generator=g),
            torch.randint(0, spec.num_classes, (m, batch_size), generator=g),
            torch.rand(m, generator=g),
            *([2 * torch.rand(m, batch_size, *s, generator=g) for s in spec.hidden_shapes()] if dropout else []),
        )
    )
    try:
        from torch.fx.experimental.proxy_tensor import make_fx

        gm = make_fx(flat)(*example)
        rewrite(gm)
        # gm.forward skips nn.Module.__call__'s hook machinery; torch.compile makes its own views
        fn = gm.forward if compile else HoistedViews(gm)
        torch.testing.assert_close(fn(*example), flat(*example))
    except Exception as err:  # noqa: BLE001 - any tracing failure leaves the (slower) eager path
        log.warning("tracing the vmapped step failed (%s); using eager vmap", err)
        return Step(flat)
    return Step(fn, gm)
