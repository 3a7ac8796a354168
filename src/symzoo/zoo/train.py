"""Population training: M networks, each with its own configuration, trained at once with ``torch.func``.

One step computes every network's gradient with ``vmap(grad_and_value(loss))`` over the stacked flat
parameters (M, P), where ``loss`` is the cross-entropy of :func:`symzoo.nets.functional.forward` plus the
network's L2 coefficient times its summed squared weights (biases excluded, like a Keras
``kernel_regularizer``). Each network keeps its own optimizer (SGD, Adam or RMSprop with the
``torch.optim`` defaults, batched over the networks of a kind), learning rate, L2 and dropout rate.

Randomness is counter-based (:class:`Schedule`): every draw is a splitmix64 hash of (network seed,
purpose, epoch, step, layer, element) computed in torch, so a network's train subset, batch order and
dropout masks depend on its own seed only. Training a network inside a population of any size gives the
result of training it alone, and resuming from a saved :class:`TrainState` repeats the uninterrupted
run bit for bit (on the CPU).

Epochs: every network takes ``len(x_train) // batch_size`` steps per epoch (the same for all, so a
checkpoint compares networks after equal work). Network ``m`` draws its batches from consecutive
reshuffles of its own subset of ``round(train_fraction * len(x_train))`` images: reshuffle ``c`` of
epoch ``e`` is a permutation keyed by (seed, e, c), used in order and cut where the epoch ends (so with
``train_fraction`` 1 an epoch is one shuffle with the last partial batch dropped).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl
import torch
from tqdm import tqdm

from symzoo.atomic import atomic_path
from symzoo.nets.functional import evaluate, forward
from symzoo.nets.spec import NetSpec
from symzoo.zoo.sample import OPTIMIZERS, check_configs, init_params

log = logging.getLogger(__name__)

# torch.optim defaults
ADAM_BETAS = (0.9, 0.999)
RMSPROP_ALPHA = 0.99
EPS = 1e-8

METRIC_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
DATA_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
STATE_VERSION = 1


# --------------------------------------------------------------------------------------------------
# counter-based randomness


def _i64(value: int) -> int:
    """A 64-bit constant as the signed int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GAMMA = _i64(0x9E3779B97F4A7C15)
_MIX1 = _i64(0xBF58476D1CE4E5B9)
_MIX2 = _i64(0x94D049BB133111EB)
_INT63 = (1 << 63) - 1
_SUBSET, _SHUFFLE, _DROPOUT = 1, 2, 3


_CHUNK = 1 << 16  # int64 elements hashed at a time on the CPU: the dozen passes stay in cache


def _fmix_(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser, in place on int64 ``z``.

    torch's int64 add and multiply wrap modulo 2**64 (CPU and CUDA), which is the unsigned arithmetic the
    hash needs; ``>>`` is arithmetic, so each shift is masked to make it logical.
    """
    if z.device.type == "cpu" and z.numel() > _CHUNK and z.is_contiguous():
        for part in z.view(-1).split(_CHUNK):
            _fmix_(part)
        return z
    t = z >> 30
    z ^= t.bitwise_and_((1 << 34) - 1)
    z *= _MIX1
    t = z >> 27
    z ^= t.bitwise_and_((1 << 37) - 1)
    z *= _MIX2
    t = z >> 31
    z ^= t.bitwise_and_((1 << 33) - 1)
    return z


def _derive(key: torch.Tensor, counter: int | torch.Tensor) -> torch.Tensor:
    """A new key from ``key`` and a counter (an int >= 0 or an int64 tensor broadcasting with ``key``)."""
    if isinstance(counter, torch.Tensor):
        return _fmix_(key + (counter + 1) * _GAMMA)
    return _fmix_(key + _i64((counter + 1) * (_GAMMA % (1 << 64)) % (1 << 64)))


def _stream(key: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` hashes per key: int64 of shape (*key.shape, n) (the splitmix64 sequence seeded with ``key``)."""
    ramp = (torch.arange(1, n + 1, dtype=torch.int64, device=key.device) * _GAMMA).expand(*key.shape, n)
    return _fmix_(key.unsqueeze(-1) + ramp)


def _uniform(key: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` uniform floats in [0, 1) per key, float32 (*key.shape, n): two 24-bit draws per 64-bit hash."""
    h = _stream(key, (n + 1) // 2)
    hi = (h >> 40).bitwise_and_((1 << 24) - 1)
    lo = h.bitwise_right_shift_(8).bitwise_and_((1 << 24) - 1)
    u = torch.stack((hi, lo), dim=-1).flatten(-2)[..., :n]
    return u.to(torch.float32).mul_(2.0**-24)


def _subset_size(fraction: float, n_train: int) -> int:
    return min(n_train, max(1, math.floor(fraction * n_train + 0.5)))


class Schedule:
    """Counter-based randomness of a population: train subsets, per-epoch batch order, dropout masks.

    Row ``m`` of every output depends only on ``seeds[m]``, ``dropout[m]``, ``train_fraction[m]`` and
    the shared sizes (``n_train``, ``batch_size``, the spec), never on the other rows.
    Epochs are numbered from 1 (epoch 0 is the initialisation); steps from 0.
    """

    def __init__(
        self,
        spec: NetSpec,
        seeds: torch.Tensor,
        dropout: torch.Tensor,
        train_fraction: list[float],
        n_train: int,
        batch_size: int,
        device: str | torch.device = "cpu",
        rows_per_sort: int = 16,
    ) -> None:
        if n_train < batch_size:
            raise ValueError(f"x_train has {n_train} images, fewer than one batch of {batch_size}")
        self.spec, self.device = spec, torch.device(device)
        self.n_train, self.batch_size = int(n_train), int(batch_size)
        self.steps_per_epoch = self.n_train // self.batch_size
        self.seeds = seeds.to(self.device, torch.int64)
        dropout = dropout.to(self.device, torch.float64)
        self.keep = (1 - dropout).to(torch.float32)
        self.scale = (1 / (1 - dropout)).to(torch.float32)
        self.sizes = torch.tensor([_subset_size(f, self.n_train) for f in train_fraction], device=self.device)
        self.rows_per_sort = rows_per_sort
        self.subset = self._subsets()

    def __len__(self) -> int:
        return len(self.seeds)

    def _key(self, *counters: int) -> torch.Tensor:
        key = _fmix_(self.seeds + _GAMMA)
        for counter in counters:
            key = _derive(key, counter)
        return key

    def _subsets(self) -> torch.Tensor:
        """(M, n_max): row m's first ``sizes[m]`` entries are its train images (all of them, in order, for
        a train fraction of 1; else a random subset, in a random order)."""
        n_max = int(self.sizes.max()) if len(self) else 0
        subset = torch.arange(n_max, device=self.device).repeat(len(self), 1)
        rows = (self.sizes < self.n_train).nonzero().flatten()
        keys = self._key(_SUBSET)[rows]
        for r in range(0, len(rows), self.rows_per_sort):
            h = _stream(keys[r : r + self.rows_per_sort], self.n_train).bitwise_and_(_INT63)
            subset[rows[r : r + self.rows_per_sort]] = torch.sort(h, dim=-1, stable=True).indices[:, :n_max]
        return subset

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """Indices into x_train (M, steps_per_epoch, batch_size) of every network's batches in ``epoch``."""
        need = self.steps_per_epoch * self.batch_size
        n_max = self.subset.shape[1]
        cycles = -(-need // int(self.sizes.min())) if len(self) else 0
        pos = torch.arange(need, device=self.device)
        keys = _derive(self._key(_SHUFFLE, epoch).unsqueeze(-1), torch.arange(cycles, device=self.device))
        out = []
        for r in range(0, len(self), self.rows_per_sort):
            size = self.sizes[r : r + self.rows_per_sort, None]
            h = _stream(keys[r : r + self.rows_per_sort], n_max).bitwise_and_(_INT63)  # (rows, cycles, n_max)
            h.masked_fill_(torch.arange(n_max, device=self.device) >= size[..., None], _INT63)
            perm = torch.sort(h, dim=-1, stable=True).indices.flatten(1)  # reshuffle c at [c * n_max, ...)
            slot = perm.gather(1, (pos // size) * n_max + pos % size)
            out.append(self.subset[r : r + self.rows_per_sort].gather(1, slot))
        return torch.cat(out).view(len(self), self.steps_per_epoch, self.batch_size)

    def masks(self, epoch: int, start: int, stop: int) -> list[torch.Tensor]:
        """Dropout masks of steps ``start .. stop - 1`` of ``epoch``: per hidden layer (K, M, B, *shape).

        Keep with probability 1 - rate (a 24-bit uniform below it), scaled by 1 / (1 - rate).
        """
        steps = torch.arange(start, stop, device=self.device)
        key = _derive(self._key(_DROPOUT, epoch).unsqueeze(0), steps.unsqueeze(1))  # (K, M)
        out = []
        for layer, shape in enumerate(self.spec.hidden_shapes()):
            n = self.batch_size * math.prod(shape)
            keep = _uniform(_derive(key, layer), n) < self.keep[:, None]
            mask = keep.to(torch.float32).mul_(self.scale[:, None])
            out.append(mask.view(stop - start, len(self), self.batch_size, *shape))
        return out


def _schedule(spec: NetSpec, configs: pl.DataFrame, n_train: int, batch_size: int, device) -> Schedule:
    return Schedule(
        spec,
        torch.tensor(configs["seed"].to_list(), dtype=torch.int64),
        torch.tensor(configs["dropout"].to_list(), dtype=torch.float64),
        configs["train_fraction"].to_list(),
        n_train,
        batch_size,
        device,
    )


def network_batches(
    spec: NetSpec,
    configs: pl.DataFrame,
    n_train: int,
    batch_size: int,
    epoch: int,
    step: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """What each network of ``configs`` trains on at (``epoch`` >= 1, ``step``): the indices into
    x_train (M, B) and the dropout masks, one per hidden layer (M, B, *shape), scaled by 1 / (1 - rate).

    Exactly what :func:`train_population` uses, for any population the networks are part of.
    """
    sched = _schedule(spec, configs, n_train, batch_size, device)
    if not 0 <= step < sched.steps_per_epoch or epoch < 1:
        raise ValueError(f"epoch must be >= 1 and step in [0, {sched.steps_per_epoch}), got {epoch}, {step}")
    indices = sched.epoch_indices(epoch)[:, step]
    return indices, [m[0] for m in sched.masks(epoch, step, step + 1)]


# --------------------------------------------------------------------------------------------------
# the vmapped step


def weight_mask(spec: NetSpec, device: str | torch.device = "cpu") -> torch.Tensor:
    """(P,) float32: 1 on weights, 0 on biases (the entries the L2 penalty covers)."""
    mask = torch.zeros(spec.num_params, device=device)
    for t in spec.layout:
        if t.name.endswith(".weight"):
            mask[t.offset : t.stop] = 1
    return mask


def make_loss(spec: NetSpec, wmask: torch.Tensor, dropout: bool = True, l2: bool = True) -> Callable:
    """loss(theta, xb, yb, masks, l2) → (CE + l2 * sum of squared weights, CE) of one network.

    ``dropout`` / ``l2`` False drop the masks / the penalty (exactly what a rate / coefficient of 0 gives).
    """

    def loss(theta, xb, yb, masks, l2_coef):
        logits = forward(spec, theta, xb, masks if dropout else None)
        # = F.cross_entropy(logits, yb); logsumexp is faster than log_softmax over 10 classes on the CPU, and
        # this skips cross_entropy's ignore_index bookkeeping (a dozen ops per step)
        ce = (logits.logsumexp(-1) - logits.gather(-1, yb.unsqueeze(-1)).squeeze(-1)).mean()
        objective = ce + l2_coef * (theta.square() * wmask).sum() if l2 else ce
        return objective, ce

    return loss


def _fuse_slice_backward_sums(gm: torch.fx.GraphModule) -> None:
    """Rewrite sums of ``slice_backward`` terms that tile a tensor into one ``cat``.

    The gradient of unflatten's slices is, per layer tensor, a zero-filled (M, P) copy, all added up;
    ``cat`` of the pieces (plus the other terms, e.g. the L2 gradient) is the same value in one pass.
    """
    aten, graph, seen = torch.ops.aten, gm.graph, set()
    for root in reversed(list(graph.nodes)):
        if root in seen or root.target is not aten.add.Tensor or root.kwargs or len(root.args) != 2:
            continue
        leaves, stack = [], [root]
        while stack:
            node = stack.pop()
            seen.add(node)
            for arg in node.args[:2]:
                chain = isinstance(arg, torch.fx.Node) and arg.target is aten.add.Tensor
                if chain and len(arg.users) == 1 and not arg.kwargs and len(arg.args) == 2:
                    stack.append(arg)
                else:
                    leaves.append(arg)
        pieces = [
            n
            for n in leaves
            if isinstance(n, torch.fx.Node) and n.target is aten.slice_backward.default and len(n.users) == 1
        ]
        others = [n for n in leaves if n not in pieces]
        if len(pieces) < 2 or not all(isinstance(n, torch.fx.Node) for n in others):
            continue
        sizes, dim = list(pieces[0].args[1]), pieces[0].args[2]
        if any(list(n.args[1]) != sizes or n.args[2] != dim or n.args[5] != 1 for n in pieces):
            continue
        pieces.sort(key=lambda n: n.args[3])
        stops = [0] + [n.args[4] for n in pieces]
        if [n.args[3] for n in pieces] != stops[:-1] or stops[-1] != sizes[dim]:
            continue
        with graph.inserting_before(root):
            new = graph.call_function(aten.cat.default, ([n.args[0] for n in pieces], dim))
            for other in others:
                new = graph.call_function(aten.add.Tensor, (other, new))
        root.replace_all_uses_with(new)
    graph.eliminate_dead_code()


def _fuse_bias_add(gm: torch.fx.GraphModule) -> None:
    """``add(bias, bmm(a, b))`` → ``baddbmm(bias, a, b)`` (the vmapped ``F.linear``): one kernel, not two."""
    aten = torch.ops.aten
    for node in list(gm.graph.nodes):
        if node.target is not aten.add.Tensor or node.kwargs or len(node.args) != 2:
            continue
        for i, prod in enumerate(node.args):
            other = node.args[1 - i]
            if not (
                isinstance(prod, torch.fx.Node)
                and prod.target is aten.bmm.default
                and len(prod.users) == 1
                and isinstance(other, torch.fx.Node)
            ):
                continue
            out, val = node.meta.get("val"), prod.meta.get("val")
            bias = other.meta.get("val")
            if not all(isinstance(t, torch.Tensor) for t in (out, val, bias)) or out.shape != val.shape:
                continue
            if bias.dtype != out.dtype or bias.ndim != 3:
                continue
            with gm.graph.inserting_before(node):
                fused = gm.graph.call_function(aten.baddbmm.default, (other, *prod.args))
            fused.meta["val"] = out
            node.replace_all_uses_with(fused)
            break
    gm.graph.eliminate_dead_code()


def _drop_identity_views(gm: torch.fx.GraphModule) -> None:
    """Remove views / expands onto the same shape and strides, transposes of transposes, products with 1."""
    aten = torch.ops.aten
    for node in list(gm.graph.nodes):
        inner = node.args[0] if node.args else None
        if (
            node.target is aten.transpose.int
            and isinstance(inner, torch.fx.Node)
            and inner.target is aten.transpose.int
            and sorted(node.args[1:]) == sorted(inner.args[1:])
        ):
            node.replace_all_uses_with(inner.args[0])
        elif node.target in (aten.view.default, aten.expand.default, aten._unsafe_view.default):
            if not isinstance(inner, torch.fx.Node):
                continue
            src, out = inner.meta.get("val"), node.meta.get("val")
            if (
                isinstance(src, torch.Tensor)
                and isinstance(out, torch.Tensor)
                and src.shape == out.shape
                and src.stride() == out.stride()
            ):
                node.replace_all_uses_with(node.args[0])
        elif node.target is aten.mul.Scalar and node.args[1] == 1 and isinstance(node.args[0], torch.fx.Node):
            node.replace_all_uses_with(node.args[0])
    gm.graph.eliminate_dead_code()


_VIEW_OPS = (
    torch.ops.aten.slice.Tensor,
    torch.ops.aten.view.default,
    torch.ops.aten.transpose.int,
    torch.ops.aten.unsqueeze.default,
    torch.ops.aten.expand.default,
    torch.ops.aten.select.int,
    torch.ops.aten.permute.default,
)


class _HoistedViews:
    """A traced step whose views of the parameters are made once, not at every step.

    The parameters (the graph's first input) are one tensor updated in place for a whole run, so
    its slices / views / transposes (a third of the graph's ops) can be computed once per tensor by a
    prologue graph and passed to the step graph as extra inputs.
    """

    def __init__(self, gm: torch.fx.GraphModule):
        graph = gm.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        theta, hoisted = placeholders[0], {placeholders[0]}
        for node in graph.nodes:
            tensor_args = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, torch.fx.Node)]
            if node.target in _VIEW_OPS and tensor_args and all(a in hoisted for a in tensor_args):
                hoisted.add(node)
        boundary = [n for n in graph.nodes if n in hoisted and n is not theta and set(n.users) - hoisted]
        prologue, env = torch.fx.Graph(), {}
        env[theta] = prologue.placeholder("theta")
        for node in graph.nodes:
            if node in hoisted and node is not theta:
                env[node] = prologue.node_copy(node, lambda a: env[a])
        prologue.output(tuple(env[n] for n in boundary))
        self.prologue = torch.fx.GraphModule(gm, prologue).forward
        with graph.inserting_after(placeholders[-1]):
            for i, node in enumerate(reversed(boundary)):
                new = graph.placeholder(f"view_of_theta_{len(boundary) - i}")
                new.meta = dict(node.meta)
                node.replace_all_uses_with(new)
        graph.eliminate_dead_code()
        graph.lint()
        gm.recompile()
        self.step = gm.forward
        self.theta: torch.Tensor | None = None
        self.views: tuple = ()

    def __call__(self, theta: torch.Tensor, *inputs: torch.Tensor):
        if theta is not self.theta:
            self.theta, self.views = theta, self.prologue(theta)
        return self.step(theta, *inputs, *self.views)


_STEPS: dict[tuple, Callable] = {}


def build_step(
    spec: NetSpec,
    m: int,
    batch_size: int,
    dropout: bool,
    l2: bool,
    device: str | torch.device = "cpu",
    compile: bool = False,
) -> Callable:
    """step(theta (M, P), xb (M, B, ...), yb (M, B), l2 (M,), *masks (M, B, *shape)) → (grads (M, P), CE (M,)).

    ``vmap(grad_and_value(loss))`` (:func:`make_loss`) traced once into a graph of aten ops (``make_fx``),
    cleaned up, and optionally compiled with ``torch.compile``; this removes most of functorch's
    per-step dispatch cost. The clean-up: the gradients of unflatten's layer slices (zero-filled
    (M, P) tensors, summed) become one ``cat``; bias add + ``bmm`` become ``baddbmm``; views onto
    themselves go; the graph takes and returns flat tensors (no pytree handling). The arithmetic is
    eager ``vmap``'s, up to float rounding. Falls back to eager ``vmap`` if tracing fails. Cached per
    shape and device.
    """
    device = torch.device(device)
    key = (spec, m, batch_size, dropout, l2, str(device), compile)
    if key in _STEPS:
        return _STEPS[key]
    grad_fn = torch.func.vmap(
        torch.func.grad_and_value(make_loss(spec, weight_mask(spec, device), dropout, l2), has_aux=True)
    )

    def flat(theta, xb, yb, l2_coef, *masks):
        grads, (_, ce) = grad_fn(theta, xb, yb, list(masks), l2_coef)
        return grads, ce

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
        _fuse_slice_backward_sums(gm)
        _drop_identity_views(gm)
        _fuse_bias_add(gm)
        gm.graph.set_codegen(torch.fx.graph.CodeGen())  # flat arguments and outputs, no pytree
        gm.graph.lint()
        gm.recompile()
        # gm.forward skips nn.Module.__call__'s hook machinery; torch.compile makes its own views
        step = gm.forward if compile else _HoistedViews(gm)
        torch.testing.assert_close(step(*example), flat(*example))
    except Exception as err:  # noqa: BLE001 - any tracing failure leaves the (slower) eager path
        log.warning("tracing the vmapped step failed (%s); using eager vmap", err)
        step = flat
    if compile:
        step = torch.compile(step, dynamic=False)
    _STEPS[key] = step
    return step


# --------------------------------------------------------------------------------------------------
# optimizers, batched over networks


class _Optimizers:
    """SGD / Adam / RMSprop (torch.optim defaults: no momentum, betas 0.9/0.999, alpha 0.99, eps 1e-8),
    each network its own learning rate, updating ``theta`` in place. Networks are grouped by kind into
    contiguous row ranges of the (M, P) tensors, so every update is a few in-place ops on views (made once)."""

    def __init__(
        self, kinds: list[str], lr: torch.Tensor, theta: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor
    ):
        lr = lr.to(theta.device, torch.float64).view(-1, 1)
        self.groups = []
        for kind in OPTIMIZERS:
            rows = [i for i, k in enumerate(kinds) if k == kind]
            if not rows:
                continue
            if rows != list(range(rows[0], rows[-1] + 1)):
                raise ValueError("networks must be grouped by optimizer")
            r = slice(rows[0], rows[-1] + 1)
            self.groups.append((kind, r, theta[r], exp_avg[r], exp_avg_sq[r], lr[r], (-lr[r]).to(torch.float32)))

    def step(self, grad: torch.Tensor, t: int) -> None:
        """Apply ``grad`` (M, P); ``t`` is the 1-based step count (Adam's bias correction)."""
        for kind, rows, p, m, v, lr, neg_lr in self.groups:
            g = grad[rows]
            if kind == "sgd":
                p.addcmul_(g, neg_lr)  # = torch.optim's add_(g, alpha=-lr)
            elif kind == "adam":
                beta1, beta2 = ADAM_BETAS
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                neg_step = (lr / -(1 - beta1**t)).to(torch.float32)
                denom = v.sqrt().div_(math.sqrt(1 - beta2**t)).add_(EPS)
                p.addcdiv_(m * neg_step, denom)  # = torch.optim's addcdiv_(m, denom, value=-step_size)
            else:
                v.mul_(RMSPROP_ALPHA).addcmul_(g, g, value=1 - RMSPROP_ALPHA)
                p.addcdiv_(g * neg_lr, v.sqrt().add_(EPS))


# --------------------------------------------------------------------------------------------------
# settings, state, training


@dataclass(frozen=True)
class TrainSettings:
    """``epochs`` to train; ``checkpoints``: epochs (0 = the initialisation) whose parameters and metrics
    are kept; ``compile``: also ``torch.compile`` the traced step (one-off cost of about half a minute
    per shape, faster steps; for long runs)."""

    epochs: int
    checkpoints: tuple[int, ...]
    batch_size: int = 32
    eval_batch_size: int = 2048
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoints", tuple(sorted({int(c) for c in self.checkpoints})))
        if self.epochs < 0:
            raise ValueError(f"train settings: epochs must be >= 0, got {self.epochs}")
        if any(not 0 <= c <= self.epochs for c in self.checkpoints):
            raise ValueError(f"train settings: checkpoints {self.checkpoints} must lie in [0, epochs={self.epochs}]")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"train settings: batch sizes must be >= 1, got {self.batch_size}, {self.eval_batch_size}")


@dataclass
class TrainState:
    """Everything needed to continue training a population (all tensors on the CPU, rows in config order).

    ``epoch``/``step``: epochs / optimizer steps done. ``checkpoints``: epoch → params (M, P).
    ``metrics``: one row per (network, checkpoint epoch). ``configs``/``fingerprint`` guard a resume
    against a different population or setup.
    """

    configs: dict[str, list]
    fingerprint: dict[str, int]
    epoch: int
    step: int
    params: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    checkpoints: dict[int, torch.Tensor] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)

    @property
    def run_ids(self) -> list[str]:
        return list(self.configs["run_id"])

    def metrics_frame(self) -> pl.DataFrame:
        """Columns run_id, epoch, train/val/test loss and accuracy; sorted by epoch, then config order."""
        schema = {"run_id": pl.String, "epoch": pl.Int64} | {c: pl.Float64 for c in METRIC_COLUMNS}
        return pl.DataFrame(self.metrics, schema=schema)

    def checkpoint_params(self) -> tuple[list[int], torch.Tensor]:
        """(epochs, params (len(epochs), M, P)) of the checkpoints recorded so far, by epoch."""
        epochs = sorted(self.checkpoints)
        if not epochs:
            return [], torch.zeros(0, *self.params.shape)
        return epochs, torch.stack([self.checkpoints[e] for e in epochs])

    def to_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "configs": self.configs,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "step": self.step,
            "params": self.params,
            "exp_avg": self.exp_avg,
            "exp_avg_sq": self.exp_avg_sq,
            "checkpoints": dict(self.checkpoints),
            "metrics": list(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"training state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(**{k: v for k, v in data.items() if k != "version"})


def save_state(state: TrainState, path: str | os.PathLike) -> None:
    """Write ``state`` with ``torch.save`` atomically (a reader sees the old file or the new one)."""
    with atomic_path(path) as tmp:
        torch.save(state.to_dict(), tmp)


def load_state(path: str | os.PathLike) -> TrainState:
    """Read a state written by :func:`save_state` (plain tensors and lists: ``weights_only`` safe)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable training state ({err})") from err
    try:
        return TrainState.from_dict(data)
    except (AttributeError, TypeError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a training state ({err})") from err


def _configs_dict(configs: pl.DataFrame) -> dict[str, list]:
    from symzoo.zoo.sample import CONFIG_SCHEMA

    return {name: configs[name].to_list() for name in CONFIG_SCHEMA}


def _check_data(spec: NetSpec, data: Mapping, device: torch.device) -> dict[str, torch.Tensor]:
    out = {}
    for key in DATA_KEYS:
        if key not in data:
            raise ValueError(f"data: missing {key!r}")
        value = torch.as_tensor(data[key])
        if key.startswith("x"):
            if value.ndim != 4 or tuple(value.shape[1:]) != spec.input_shape:
                raise ValueError(f"data: {key!r} has shape {tuple(value.shape)}, expected (N, *{spec.input_shape})")
            value = value.to(device, torch.float32).contiguous()
        else:
            if value.ndim != 1 or value.is_floating_point():
                raise ValueError(f"data: {key!r} must be 1-d integer labels, got {value.dtype} {tuple(value.shape)}")
            value = value.to(device, torch.int64).contiguous()
        out[key] = value
    for split in ("train", "val", "test"):
        if len(out[f"x_{split}"]) != len(out[f"y_{split}"]):
            raise ValueError(f"data: x_{split} and y_{split} have different lengths")
        if len(out[f"x_{split}"]) == 0:
            raise ValueError(f"data: x_{split} is empty")
    return out


def initial_state(spec: NetSpec, configs: pl.DataFrame, settings: TrainSettings, n_train: int) -> TrainState:
    """A population at epoch 0: parameters from :func:`symzoo.zoo.sample.init_params`, fresh optimizers."""
    params = init_params(spec, configs)
    return TrainState(
        configs=_configs_dict(configs),
        fingerprint={"num_params": spec.num_params, "n_train": n_train, "batch_size": settings.batch_size},
        epoch=0,
        step=0,
        params=params,
        exp_avg=torch.zeros_like(params),
        exp_avg_sq=torch.zeros_like(params),
    )


def _check_resume(state: TrainState, spec: NetSpec, configs: pl.DataFrame, settings: TrainSettings, n_train: int):
    expected = {"num_params": spec.num_params, "n_train": n_train, "batch_size": settings.batch_size}
    for name, value in expected.items():
        if state.fingerprint.get(name) != value:
            raise ValueError(f"training state: {name} is {state.fingerprint.get(name)}, this run has {value}")
    ours = _configs_dict(configs)
    for name, values in ours.items():
        if state.configs.get(name) != values:
            raise ValueError(f"training state: configs column {name!r} differs from this run's configs")
    if tuple(state.params.shape) != (len(configs), spec.num_params):
        raise ValueError(f"training state: params of shape {tuple(state.params.shape)} do not fit the population")


def _record(
    state: TrainState, spec: NetSpec, params: torch.Tensor, data: dict, settings: TrainSettings, epoch: int
) -> None:
    """Keep ``params`` (config order) as checkpoint ``epoch`` with its train/val/test metrics."""
    results = {}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(spec, params, data[f"x_{split}"], data[f"y_{split}"], batch_size=settings.eval_batch_size)
        results[f"{split}_loss"], results[f"{split}_accuracy"] = loss.tolist(), acc.tolist()
    state.checkpoints[epoch] = params.detach().to("cpu", copy=True)
    state.metrics = [r for r in state.metrics if r["epoch"] != epoch]
    for m, rid in enumerate(state.configs["run_id"]):
        state.metrics.append({"run_id": rid, "epoch": epoch} | {c: float(results[c][m]) for c in METRIC_COLUMNS})


def train_population(
    spec: NetSpec,
    configs: pl.DataFrame,
    data: Mapping[str, torch.Tensor],
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    progress: bool = True,
    state: TrainState | None = None,
    on_epoch: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train the networks ``configs`` describes (see :mod:`symzoo.zoo.sample`) together on ``data``.

    ``data``: x_train, y_train, x_val, y_val, x_test, y_test (images (N, C, H, W), int labels).
    ``state``: continue a run (from :func:`load_state`) instead of starting at the initialisation.
    ``on_epoch(state)``: called after every epoch with the up-to-date state (e.g. to save it).
    Returns the final state (``state``, updated in place, if given): ``state.params``, ``state.checkpoints``
    (epoch → params (M, P)), ``state.metrics_frame()``.
    Diverging networks are not an error: their parameters turn non-finite and stay so.
    """
    check_configs(configs)
    device = torch.device(device)
    data = _check_data(spec, data, device)
    n_train, m_total = len(data["x_train"]), len(configs)
    if state is None:
        state = initial_state(spec, configs, settings, n_train)
    else:
        _check_resume(state, spec, configs, settings, n_train)
    if state.epoch == 0 and 0 in settings.checkpoints and 0 not in state.checkpoints:
        _record(state, spec, state.params.to(device), data, settings, 0)
    if state.epoch >= settings.epochs or m_total == 0:
        return state

    # Work in optimizer order (contiguous groups), on the device; rows map back through `order`.
    kinds = configs["optimizer"].to_list()
    order = sorted(range(m_total), key=lambda i: OPTIMIZERS.index(kinds[i]))
    order_t = torch.tensor(order, device=device)
    work = configs[order, :]

    def to_work(t: torch.Tensor) -> torch.Tensor:
        return t.to(device)[order_t].contiguous()

    def to_configs(t: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(t)
        out[order_t] = t
        return out

    theta, exp_avg, exp_avg_sq = to_work(state.params), to_work(state.exp_avg), to_work(state.exp_avg_sq)
    lr = torch.tensor(work["learning_rate"].to_list(), dtype=torch.float64)
    opt = _Optimizers([kinds[i] for i in order], lr, theta, exp_avg, exp_avg_sq)
    l2 = torch.tensor(work["l2"].to_list(), dtype=torch.float32, device=device)
    sched = _schedule(spec, work, n_train, settings.batch_size, device)
    use_dropout, use_l2 = bool((work["dropout"] > 0).any()), bool((work["l2"] > 0).any())
    step_fn = build_step(spec, m_total, settings.batch_size, use_dropout, use_l2, device, settings.compile)

    x_train, y_train = data["x_train"], data["y_train"]
    b, steps = settings.batch_size, sched.steps_per_epoch
    # Batches are gathered a few steps at a time (one index op, small enough to stay in cache), dropout
    # masks for more steps at a time (fewer, larger hashing ops).
    data_chunk = max(1, (1 << 18) // (m_total * b * math.prod(spec.input_shape)))
    mask_chunk = max(1, (1 << 21) // (m_total * b * sum(math.prod(s) for s in spec.hidden_shapes())))

    def sync() -> None:
        state.params = to_configs(theta).cpu()
        state.exp_avg, state.exp_avg_sq = to_configs(exp_avg).cpu(), to_configs(exp_avg_sq).cpu()

    bar = tqdm(range(state.epoch + 1, settings.epochs + 1), desc="zoo train", unit="epoch", disable=not progress)
    for epoch in bar:
        indices = sched.epoch_indices(epoch).transpose(0, 1)  # (steps, M, B)
        ce_sum = torch.zeros(m_total, device=device)
        masks: list[torch.Tensor] = []
        for step in range(steps):
            k = step % data_chunk
            if k == 0:
                ids = indices[step : step + data_chunk].flatten()
                xs = x_train.index_select(0, ids).view(-1, m_total, b, *spec.input_shape)
                ys = y_train.index_select(0, ids).view(-1, m_total, b)
            if use_dropout and step % mask_chunk == 0:
                masks = sched.masks(epoch, step, min(steps, step + mask_chunk))
            grads, ce = step_fn(theta, xs[k], ys[k], l2, *[mask[step % mask_chunk] for mask in masks])
            state.step += 1
            opt.step(grads, state.step)
            ce_sum += ce
        state.epoch = epoch
        mean_loss = torch.nanmean(ce_sum / steps).item()
        finite = int(torch.isfinite(theta).all(dim=1).sum())
        log.info(
            "epoch %d/%d: mean train loss %.4f (%d/%d networks finite)",
            epoch,
            settings.epochs,
            mean_loss,
            finite,
            m_total,
        )
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        if epoch in settings.checkpoints:
            _record(state, spec, to_configs(theta), data, settings, epoch)
        if on_epoch is not None or epoch == settings.epochs:
            sync()
        if on_epoch is not None:
            on_epoch(state)
    return state
