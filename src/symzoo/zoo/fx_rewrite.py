"""Rewrites of the traced training step: an aten graph (``make_fx``) made cheaper to run, same values.

The vmapped ``grad_and_value`` of :mod:`symzoo.zoo.step`, traced into aten ops, spends much of its time in
bookkeeping rather than arithmetic. :func:`rewrite` fixes the three costliest patterns in place, and
:class:`HoistedViews` moves the views of the parameters out of the per-step graph:

- the gradients of unflatten's layer slices (zero-filled (M, P) ``slice_backward`` tensors, summed) become
  one ``cat``. This relies on ``aten.slice_backward``'s argument positions (grad, input sizes, dim, start,
  end, step); a torch release that changes them leaves the graph unchanged (slower, same values), which
  ``tests/test_zoo_step.py`` catches;
- bias add + ``bmm`` (the vmapped ``F.linear``) become ``baddbmm``;
- views onto the same shape and strides, transposes of transposes and products with 1 go.
"""

from __future__ import annotations

import torch


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


def rewrite(gm: torch.fx.GraphModule) -> None:
    """All the rewrites above, in place; the graph then takes and returns flat tensors (no pytree handling)."""
    _fuse_slice_backward_sums(gm)
    _drop_identity_views(gm)
    _fuse_bias_add(gm)
    gm.graph.set_codegen(torch.fx.graph.CodeGen())  # flat arguments and outputs, no pytree
    gm.graph.lint()
    gm.recompile()


_VIEW_OPS = (
    torch.ops.aten.slice.Tensor,
    torch.ops.aten.view.default,
    torch.ops.aten.transpose.int,
    torch.ops.aten.unsqueeze.default,
    torch.ops.aten.expand.default,
    torch.ops.aten.select.int,
    torch.ops.aten.permute.default,
)


class HoistedViews:
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
