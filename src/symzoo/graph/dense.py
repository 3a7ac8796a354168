"""Message passing on neural graphs as dense tensor operations.

Between consecutive layers a neural graph is a complete bipartite graph, and :class:`GraphStructure` orders the
edges of each weight layer destination-major (``n_dst x n_src``), forward edges first, then (optionally) their
reverse copies in the same order. So the flat PyG tensors of a batch (nodes ``(B*N, d)``, edges ``(B*E, d)``)
are, per weight layer, views of dense blocks ``(B, n_dst, n_src, d)``. :class:`DenseGraph` gathers node states
onto edges by broadcasting and aggregates messages by reductions over a block's axis, so neither a scatter nor
its backward is needed. It computes exactly what the torch-geometric path computes (sum; PNA's mean, min, max
and std with degree scalers), on the same tensors, and the encoders choose the path with one flag
(``message_passing: dense | pyg``); tests check that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from symzoo.graph.neural_graph import GraphStructure

PNA_STD_EPS = 1e-5
"""torch-geometric's StdAggregation: sqrt(clamp(var, eps)), set to 0 where var <= eps."""


@dataclass(frozen=True)
class _Block:
    """One weight layer: its edges [start, start + n_dst * n_src) of a graph and its two node layers."""

    start: int
    src: slice
    dst: slice

    @property
    def n_src(self) -> int:
        return self.src.stop - self.src.start

    @property
    def n_dst(self) -> int:
        return self.dst.stop - self.dst.start

    @property
    def edges(self) -> slice:
        return slice(self.start, self.start + self.n_dst * self.n_src)


class DenseGraph:
    """Dense gathers and aggregations for a batch of ``batch_size`` graphs of one :class:`GraphStructure`."""

    def __init__(self, structure: GraphStructure, batch_size: int) -> None:
        self.structure, self.batch_size = structure, batch_size
        self.num_nodes, self.num_edges = structure.num_nodes, structure.num_edges
        blocks, start = [], 0
        for layer in range(structure.spec.num_layers):
            block = _Block(start, structure.layer_nodes(layer), structure.layer_nodes(layer + 1))
            blocks.append(block)
            start = block.edges.stop
        self.forward_blocks = tuple(blocks)
        self.reverse = structure.reverse_edges
        #: reverse copies: the same dense layout, offset by the number of forward edges
        self.reverse_blocks = tuple(
            _Block(b.start + structure.num_forward_edges, b.src, b.dst) for b in blocks if self.reverse
        )
        self.node_sizes = list(structure.spec.sizes)
        self.edge_sizes = [b.n_dst * b.n_src for b in self.forward_blocks] * (2 if self.reverse else 1)

    # Splitting (rather than slicing) keeps the backward one concatenation instead of a zero-filled
    # full-size tensor per block.
    def _layers(self, h: Tensor) -> tuple[Tensor, ...]:
        """Node states per node layer, each (B, n_l, d)."""
        return self._nodes(h).split(self.node_sizes, dim=1)

    def _edge_blocks(self, e: Tensor) -> list[tuple[_Block, bool, Tensor]]:
        """(block, is_reverse, edge states (B, n_dst, n_src, d)) for every block, forward ones first."""
        parts = e.reshape(self.batch_size, self.num_edges, e.shape[-1]).split(self.edge_sizes, dim=1)
        blocks = [(b, False) for b in self.forward_blocks] + [(b, True) for b in self.reverse_blocks]
        return [(b, rev, part.unflatten(1, (b.n_dst, b.n_src))) for (b, rev), part in zip(blocks, parts)]

    def _nodes(self, h: Tensor) -> Tensor:
        return h.reshape(self.batch_size, self.num_nodes, h.shape[-1])

    def _gather(self, h: Tensor, forward_side: str, reverse_side: str) -> Tensor:
        layers, d = self._layers(h), h.shape[-1]
        parts = []
        for blocks, side in ((self.forward_blocks, forward_side), (self.reverse_blocks, reverse_side)):
            for layer, b in enumerate(blocks):
                nodes = layers[layer].unsqueeze(1) if side == "src" else layers[layer + 1].unsqueeze(2)
                parts.append(nodes.expand(-1, b.n_dst, b.n_src, -1).reshape(self.batch_size, -1, d))
        return torch.cat(parts, dim=1).reshape(-1, d)

    def source(self, h: Tensor) -> Tensor:
        """``h[edge_index[0]]``: the source node's state on every edge (B*E, d)."""
        return self._gather(h, "src", "dst")

    def target(self, h: Tensor) -> Tensor:
        """``h[edge_index[1]]``: the target node's state on every edge (B*E, d)."""
        return self._gather(h, "dst", "src")

    def _blockwise(self, e: Tensor, src: Tensor, dst: Tensor, op) -> Tensor:
        """``op(e_block, src_states, dst_states)`` per block, node states broadcast over the block's other axis."""
        d = e.shape[-1]
        src, dst = self._layers(src), self._layers(dst)
        parts = []
        for layer, (_, reverse, block) in enumerate(self._edge_blocks(e)):
            layer %= len(self.forward_blocks)
            at_src, at_dst = src[layer].unsqueeze(1), dst[layer + 1].unsqueeze(2)
            if reverse:  # a reverse edge leaves the forward target and enters the forward source
                at_src, at_dst = src[layer + 1].unsqueeze(2), dst[layer].unsqueeze(1)
            parts.append(op(block, at_src, at_dst).reshape(self.batch_size, -1, d))
        return torch.cat(parts, dim=1).reshape(-1, d)

    def add_endpoints(self, e: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        """``e + src[edge_index[0]] + dst[edge_index[1]]`` (B*E, d) without gathering the node states."""
        return self._blockwise(e, src, dst, lambda block, s, t: block + s + t)

    def times_source(self, e: Tensor, h: Tensor) -> Tensor:
        """``e * h[edge_index[0]]`` (B*E, d) without gathering the node states."""
        return self._blockwise(e, h, h, lambda block, s, t: block * s)

    def _incoming(self, m: Tensor) -> list[list[tuple[Tensor, int]]]:
        """Per node layer, the message blocks arriving there with the axis to reduce over."""
        incoming: list[list[tuple[Tensor, int]]] = [[] for _ in range(self.structure.num_layers)]
        for layer, (_, reverse, block) in enumerate(self._edge_blocks(m)):
            layer %= len(self.forward_blocks)
            if reverse:
                incoming[layer].append((block, 1))
            else:
                incoming[layer + 1].append((block, 2))
        return incoming

    def _per_layer(self, m: Tensor, reduce) -> Tensor:
        """``reduce(blocks, n_nodes)`` per node layer, concatenated to (B*N, ...)."""
        d = m.shape[-1]
        outs = []
        for layer, blocks in enumerate(self._incoming(m)):
            n = self.structure.spec.sizes[layer]
            outs.append(reduce(blocks, n, m.new_zeros(self.batch_size, n, d)))
        out = torch.cat(outs, dim=1)
        return out.reshape(self.batch_size * self.num_nodes, out.shape[-1])

    def sum(self, m: Tensor) -> Tensor:
        """Sum of the messages ``m`` (B*E, d) arriving at every node (B*N, d); 0 where none arrive."""

        def reduce(blocks, n, zeros):
            return sum((block.sum(axis) for block, axis in blocks), zeros)

        return self._per_layer(m, reduce)

    def sum_at_source(self, m: Tensor) -> Tensor:
        """Sum of the messages ``m`` (B*E, d) over the edges *leaving* every node (B*N, d): what flows backwards
        along the forward edges, without reverse copies. Forward edges only."""
        if self.reverse:
            raise NotImplementedError("sum_at_source: forward edges only (a reverse edge's source is a target)")
        layers = list(m.new_zeros(self.batch_size, self.num_nodes, m.shape[-1]).split(self.node_sizes, dim=1))
        for layer, (_, _, block) in enumerate(self._edge_blocks(m)):
            layers[layer] = block.sum(1)
        return torch.cat(layers, dim=1).reshape(-1, m.shape[-1])

    def bilinear_sum(self, e: Tensor, weight: Tensor, h: Tensor) -> Tensor:
        """``sum_j (e_ji @ weight) ⊙ h_j`` at every node i (B*N, d), for edge features ``e`` (B*E, k), a (k, d)
        ``weight`` and node states ``h`` (B*N, d): per weight layer one batched contraction, no per-edge tensor."""
        if self.reverse:
            raise NotImplementedError("bilinear_sum: forward edges only")
        layers, d = self._layers(h), h.shape[-1]
        parts = [torch.zeros_like(layers[0])]
        for layer, (_, _, block) in enumerate(self._edge_blocks(e)):
            per_tap = torch.einsum("bijk,bjd->bikd", block, layers[layer])  # the layer's own forward, per tap
            parts.append((per_tap * weight).sum(2))
        return torch.cat(parts, dim=1).reshape(-1, d)

    def in_degree(self) -> Tensor:
        """Incoming edges per node of one graph (N,), as a float tensor on the CPU."""
        return self.structure.in_degree().float()

    def pna(self, m: Tensor, aggregation) -> Tensor:
        """PNA aggregation: [mean, min, max, std] x [identity, amplification], (B*N, 8d), as torch-geometric's
        ``DegreeScalerAggregation(["mean", "min", "max", "std"], ["identity", "amplification"])`` (the module
        ``aggregation``, whose average log-degree it uses)."""

        def reduce(blocks, n, zeros):
            if not blocks:
                return torch.cat([zeros] * 4, dim=-1)
            count = sum(block.shape[axis] for block, axis in blocks)
            total = sum(block.sum(axis) for block, axis in blocks)
            squares = sum(block.square().sum(axis) for block, axis in blocks)
            low = torch.stack([block.amin(axis) for block, axis in blocks]).amin(0)
            high = torch.stack([block.amax(axis) for block, axis in blocks]).amax(0)
            mean = total / count
            var = squares / count - mean * mean
            std = var.clamp(min=PNA_STD_EPS).sqrt()
            std = std.masked_fill(std <= math.sqrt(PNA_STD_EPS), 0.0)
            return torch.cat([mean, low, high, std], dim=-1)

        out = self._per_layer(m, reduce)
        deg = self.in_degree().to(m.device).repeat(self.batch_size).unsqueeze(1)
        return torch.cat([out, out * (torch.log(deg + 1) / aggregation.avg_deg_log)], dim=-1)


class SparseGraph:
    """The same operations through torch-geometric's gathers and aggregations: any edge list, any graph."""

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        from torch_geometric.nn.aggr import SumAggregation

        self.edge_index, self.num_nodes = edge_index, num_nodes
        self._sum = SumAggregation()

    def source(self, h: Tensor) -> Tensor:
        return h.index_select(0, self.edge_index[0])

    def add_endpoints(self, e: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        return e + self.source(src) + self.target(dst)

    def times_source(self, e: Tensor, h: Tensor) -> Tensor:
        return e * self.source(h)

    def target(self, h: Tensor) -> Tensor:
        return h.index_select(0, self.edge_index[1])

    def sum(self, m: Tensor) -> Tensor:
        return self._sum(m, self.edge_index[1], dim_size=self.num_nodes)

    def sum_at_source(self, m: Tensor) -> Tensor:
        return self._sum(m, self.edge_index[0], dim_size=self.num_nodes)

    def bilinear_sum(self, e: Tensor, weight: Tensor, h: Tensor) -> Tensor:
        return self.sum((e @ weight) * self.source(h))

    def pna(self, m: Tensor, aggregation) -> Tensor:
        return aggregation(m, self.edge_index[1], dim_size=self.num_nodes)


def graph_ops(structure: GraphStructure, batch, dense: bool) -> DenseGraph | SparseGraph:
    """The message-passing operations for ``batch`` (a :func:`~symzoo.graph.neural_graph.to_batch` result)."""
    if dense:
        return DenseGraph(structure, batch.num_graphs)
    return SparseGraph(batch.edge_index, batch.num_nodes)
