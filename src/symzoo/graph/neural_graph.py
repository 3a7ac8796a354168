"""Networks as neural graphs (Kofinas et al. 2024): nodes are neurons or channels, edges are weights or kernels.

A :class:`GraphStructure` is built once per architecture (zoo). It holds the graph's topology and two index
maps into the flat parameter vector, so a batch of networks becomes a PyG :class:`~torch_geometric.data.Batch`
by plain gathering (:func:`to_batch`) and back by scattering (:func:`to_params`), without collating one
``Data`` object per network.

Layout:

- nodes: ``sum(spec.sizes)`` nodes ordered layer by layer (inputs, hidden layers, outputs). Node feature =
  the unit's bias (0 for input nodes). ``node_layer`` in 0..L; ``node_type``: every input node and every
  output node has its own type, all nodes of one hidden layer share one type (types are ordered: inputs,
  hidden layers, outputs).
- edges: one per weight (MLP) or per kernel (CNN, source channel → target channel), ordered by layer and then
  row-major over the weight tensor (out, in). Edge features have ``k * k`` entries for a CNN (the flattened
  kernel; a dense layer's weight sits in the fixed slot :attr:`GraphStructure.dense_slot`, the centre tap,
  the others are zero padding) and 1 entry for an MLP. ``edge_layer`` is the weight layer (0..L-1).
- optional reverse edges (target → source, same features) are appended after the forward edges, with
  ``edge_dir`` 1 (forward edges 0).

Per-layer normalisation statistics live in :mod:`symzoo.graph.stats`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from symzoo.nets.spec import NetSpec

if TYPE_CHECKING:  # torch-geometric loads (seconds) only when a batch is built
    from torch_geometric.data import Batch


class GraphStructure:
    """The neural graph of one architecture, with index maps into the flat parameter vector.

    All tensors live on the CPU; :func:`to_batch` caches device copies (and the per-batch-size offset
    ``edge_index``) on first use.
    """

    def __init__(self, spec: NetSpec, reverse_edges: bool = False) -> None:
        self.spec = spec
        self.reverse_edges = reverse_edges
        sizes = spec.sizes
        self.edge_dim = spec.kernel_size**2 if spec.kind == "cnn" else 1
        self.dense_slot = self.edge_dim // 2
        starts = torch.tensor((0, *sizes)).cumsum(0)
        #: first node of each layer (length L + 2, the last entry is the node count)
        self.layer_start: tuple[int, ...] = tuple(int(s) for s in starts)
        self.num_nodes = self.layer_start[-1]

        self.node_layer = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        n_in, n_out, n_hidden = sizes[0], sizes[-1], len(sizes) - 2
        self.num_node_types = n_in + n_hidden + n_out
        self.node_type = torch.cat(
            [
                torch.arange(n_in),
                n_in + torch.repeat_interleave(torch.arange(n_hidden), torch.tensor(sizes[1:-1])),
                n_in + n_hidden + torch.arange(n_out),
            ]
        )

        self.bias_index = torch.full((self.num_nodes,), -1, dtype=torch.long)
        sources, targets, layers, weights = [], [], [], []
        for layer in range(spec.num_layers):
            n_src, n_dst = sizes[layer], sizes[layer + 1]
            bias = spec.tensor(layer, "bias")
            self.bias_index[self.layer_start[layer + 1] : self.layer_start[layer + 2]] = torch.arange(
                bias.offset, bias.stop
            )
            dst, src = torch.meshgrid(torch.arange(n_dst), torch.arange(n_src), indexing="ij")
            sources.append(src.flatten() + self.layer_start[layer])
            targets.append(dst.flatten() + self.layer_start[layer + 1])
            layers.append(torch.full((n_src * n_dst,), layer))
            weight = spec.tensor(layer, "weight")
            flat = torch.arange(weight.offset, weight.stop)
            if spec.is_conv(layer):
                weights.append(flat.view(n_dst * n_src, self.edge_dim))
            else:
                index = torch.full((n_src * n_dst, self.edge_dim), -1, dtype=torch.long)
                index[:, self.dense_slot] = flat
                weights.append(index)
        edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
        #: number of forward edges (one per weight or kernel)
        self.num_forward_edges = edge_index.shape[1]
        self.weight_index = torch.cat(weights)
        self.edge_layer = torch.cat(layers)
        self.edge_dir = torch.zeros(self.num_forward_edges, dtype=torch.long)
        self.edge_index = edge_index
        if reverse_edges:
            self.edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
            self.weight_index = torch.cat([self.weight_index, self.weight_index])
            self.edge_layer = torch.cat([self.edge_layer, self.edge_layer])
            self.edge_dir = torch.cat([self.edge_dir, torch.ones_like(self.edge_dir)])
        self.num_edges = self.edge_index.shape[1]
        self._cache: dict[tuple, Tensor] = {}

    @classmethod
    def from_spec(cls, spec: NetSpec, reverse_edges: bool = False) -> GraphStructure:
        """The neural graph of ``spec``; ``reverse_edges`` appends a reversed copy of every edge."""
        return cls(spec, reverse_edges)

    @property
    def num_layers(self) -> int:
        """Number of node layers (L + 1: inputs, hidden layers, outputs)."""
        return len(self.spec.sizes)

    def layer_nodes(self, layer: int) -> slice:
        """The node positions of node layer ``layer`` (0 = inputs, L = outputs)."""
        return slice(self.layer_start[layer], self.layer_start[layer + 1])

    def in_degree(self) -> Tensor:
        """In-degree of every node of one graph (all edges, reverse ones included)."""
        return torch.bincount(self.edge_index[1], minlength=self.num_nodes)

    def degree_histogram(self) -> Tensor:
        """Histogram of in-degrees (the same for every graph of the zoo), as PNA's scalers need."""
        return torch.bincount(self.in_degree())

    def cached(self, name: str, device: torch.device, batch_size: int | None = None) -> Tensor:
        """A structure tensor on ``device``, made once and kept.

        With ``batch_size`` B: ``edge_index`` offset per graph, ``batch`` (graph of each node), ``ptr`` (first
        node of each graph) or any other structure tensor repeated B times.
        """
        key = (name, str(device), batch_size)
        if key not in self._cache:
            if batch_size is None:
                value = getattr(self, name)
            elif name == "edge_index":
                offsets = torch.arange(batch_size) * self.num_nodes
                value = (self.edge_index + offsets.view(-1, 1, 1)).permute(1, 0, 2).reshape(2, -1)
            elif name == "batch":
                value = torch.arange(batch_size).repeat_interleave(self.num_nodes)
            elif name == "ptr":
                value = torch.arange(batch_size + 1) * self.num_nodes
            else:
                value = getattr(self, name).repeat(batch_size)
            self._cache[key] = value.to(device)
        return self._cache[key]


def to_batch(structure: GraphStructure, thetas: Tensor) -> Batch:
    """The neural graphs of the networks ``thetas`` (B, P) as one PyG batch, filled by indexing.

    Attributes: ``x`` (B*N, 1) biases (0 for input nodes), ``edge_attr`` (B*E, edge_dim) weights or kernels,
    ``edge_index`` (offset per graph), ``batch``, ``ptr`` and the repeated ``node_type``, ``node_layer``,
    ``edge_layer`` and ``edge_dir``.
    """
    from torch_geometric.data import Batch

    s, dev = structure, thetas.device
    if thetas.ndim != 2 or thetas.shape[1] != s.spec.num_params:
        raise ValueError(f"expected parameters of shape (B, {s.spec.num_params}), got {tuple(thetas.shape)}")
    n_graphs = thetas.shape[0]
    bias_index, weight_index = s.cached("bias_index", dev), s.cached("weight_index", dev)
    x = thetas[:, bias_index.clamp(min=0)] * (bias_index >= 0)
    e = thetas[:, weight_index.clamp(min=0)] * (weight_index >= 0)
    batch = Batch(
        x=x.reshape(-1, 1),
        edge_attr=e.reshape(-1, s.edge_dim),
        edge_index=s.cached("edge_index", dev, n_graphs),
        batch=s.cached("batch", dev, n_graphs),
        ptr=s.cached("ptr", dev, n_graphs),
        node_type=s.cached("node_type", dev, n_graphs),
        node_layer=s.cached("node_layer", dev, n_graphs),
        edge_layer=s.cached("edge_layer", dev, n_graphs),
        edge_dir=s.cached("edge_dir", dev, n_graphs),
    )
    # What Batch.from_data_list would record, so that batch.to_data_list() / batch[i] work too.
    nodes, edges = torch.arange(n_graphs + 1) * s.num_nodes, torch.arange(n_graphs + 1) * s.num_edges
    zeros = torch.zeros(n_graphs, dtype=torch.long)
    batch._num_graphs = n_graphs
    batch._slice_dict = {k: nodes for k in ("x", "node_type", "node_layer")} | {
        k: edges for k in ("edge_attr", "edge_index", "edge_layer", "edge_dir")
    }
    batch._inc_dict = {k: zeros for k in batch._slice_dict} | {"edge_index": nodes[:-1]}
    return batch


def to_params(structure: GraphStructure, batch: Batch) -> Tensor:
    """The flat parameters (B, P) of the graphs in ``batch``: the inverse of :func:`to_batch`.

    Reads the biases from ``x`` and the weights from the forward edges' ``edge_attr`` (reverse edges and
    padding slots are ignored). Differentiable.
    """
    s = structure
    x = batch.x.reshape(-1, s.num_nodes)
    n_graphs, dev = x.shape[0], x.device
    e = batch.edge_attr.reshape(n_graphs, s.num_edges * s.edge_dim)
    bias_index, weight_index = s.cached("bias_index", dev), s.cached("weight_index", dev).flatten()
    has_bias, has_weight = bias_index >= 0, weight_index >= 0
    has_weight[s.num_forward_edges * s.edge_dim :] = False
    theta = x.new_zeros(n_graphs, s.spec.num_params)
    theta[:, bias_index[has_bias]] = x[:, has_bias]
    theta[:, weight_index[has_weight]] = e[:, has_weight]
    return theta
