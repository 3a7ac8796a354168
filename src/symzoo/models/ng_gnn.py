"""NG-GNN encoder (Kofinas et al. 2024, "Graph Neural Networks for Learning Equivariant Representations of
Neural Networks"): message passing on neural graphs with edge updates, FiLM messages and PNA aggregation.

The encoder is invariant to hidden-unit permutations (the graph is, and the readout pools each hidden layer),
but not to sign flips or positive scalings. It reads per-layer *centred* normalised features
(:attr:`NGGNN.center` is True) and works best with reverse edges (so input nodes receive messages too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from symzoo.graph.dense import DenseGraph, SparseGraph, graph_ops
from symzoo.graph.neural_graph import GraphStructure
from symzoo.models.layers import GraphEmbedding, mlp, readout_dim, readout_features

if TYPE_CHECKING:  # annotations only: torch-geometric loads when a layer is built
    from torch_geometric.data import Batch

READOUTS = ("pool", "outputs")


def _mean_pool(h: Tensor) -> Tensor:
    return h.mean(dim=1)


def _max_pool(h: Tensor) -> Tensor:
    return h.amax(dim=1)


class NGLayer(nn.Module):
    """One NG-GNN layer (pre-norm residual) on node states h and edge states e.

    - edge update: e' = e + MLP([e, h_src, h_dst]) (the first linear layer is split per input, so the node
      parts are computed per node and gathered: the same map, fewer FLOPs);
    - FiLM messages: m = gamma(e') * Lin(h_src) + beta(e');
    - PNA aggregation: mean, min, max, std with identity and amplification scalers;
    - node update: h' = h + MLP([h, Lin(aggregate)]).

    ``graph`` (:mod:`symzoo.graph.dense`) does the gathers and the aggregation, densely or through PyG.
    """

    def __init__(self, dim: int, degree_histogram: Tensor, dropout: float = 0.0) -> None:
        from torch_geometric.nn.aggr import DegreeScalerAggregation

        super().__init__()
        self.aggregation = DegreeScalerAggregation(
            ["mean", "min", "max", "std"], ["identity", "amplification"], degree_histogram
        )
        self.node_norm, self.edge_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.edge_e = nn.Linear(dim, dim)
        self.edge_src = nn.Linear(dim, dim, bias=False)
        self.edge_dst = nn.Linear(dim, dim, bias=False)
        self.edge_out = nn.Linear(dim, dim)
        self.edge_act = nn.Sequential(nn.SiLU(), nn.Dropout(dropout))
        self.film = nn.Linear(dim, 2 * dim)
        self.source = nn.Linear(dim, dim)
        self.post = nn.Linear(8 * dim, dim)
        self.node_mlp = mlp([2 * dim, dim, dim], dropout)

    def forward(self, h: Tensor, e: Tensor, graph: DenseGraph | SparseGraph) -> tuple[Tensor, Tensor]:
        hn, en = self.node_norm(h), self.edge_norm(e)
        e = e + self.edge_out(self.edge_act(graph.add_endpoints(self.edge_e(en), self.edge_src(hn), self.edge_dst(hn))))
        gamma, beta = self.film(self.edge_norm(e)).chunk(2, dim=-1)
        messages = graph.times_source(gamma, self.source(hn)) + beta
        aggregate = graph.pna(messages, self.aggregation)
        h = h + self.node_mlp(torch.cat([hn, self.post(aggregate)], dim=-1))
        return h, e


class NGGNN(nn.Module):
    """NG-GNN encoder: neural-graph batch → permutation-invariant latent (B, latent).

    Node inputs: Lin(normalised bias) + node-type and node-layer embeddings; edge inputs: Lin(normalised
    weights/kernel) + edge-layer and edge-direction embeddings. Dropout between layers. Readout ``"pool"``:
    mean- and max-pool of every hidden layer, plus the input and output nodes at their fixed positions → MLP
    → ``latent``; ``"outputs"`` (the reference autoencoder's): the concatenated output-node states are the
    latent (``n_out * hidden`` wide; ``latent`` is then unused). ``dense`` picks the message-passing path.
    """

    center = True  #: reads centred, per-layer normalised features

    def __init__(
        self,
        structure: GraphStructure,
        *,
        hidden: int,
        layers: int,
        latent: int,
        dropout: float,
        readout: str,
        dense: bool,
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"NG-GNN readout must be one of {READOUTS}, not {readout!r}")
        self.structure, self.readout_kind, self.dense = structure, readout, dense
        self.latent = latent if readout == "pool" else structure.spec.sizes[-1] * hidden
        self.embedding = GraphEmbedding(structure, hidden)
        self.node_in = nn.Linear(1, hidden)
        self.edge_in = nn.Linear(structure.edge_dim, hidden)
        histogram = structure.degree_histogram()
        self.layers = nn.ModuleList(NGLayer(hidden, histogram, dropout) for _ in range(layers))
        self.between = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self.pools = (_mean_pool, _max_pool)
        if readout == "pool":
            self.readout = mlp([readout_dim(structure, 2 * hidden, hidden), hidden, latent], dropout)

    def states(self, batch: Batch, node_context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Node states (B*N, hidden), layer-normed, and edge states (B*E, hidden) after the last layer (both
        permutation-equivariant). ``node_context`` (B*N, hidden), e.g. a projected time embedding, is added to
        the initial node states."""
        graph = graph_ops(self.structure, batch, self.dense)
        h = self.node_in(batch.x) + self.embedding.nodes(batch)
        if node_context is not None:
            h = h + node_context
        e = self.edge_in(batch.edge_attr) + self.embedding.edges(batch)
        for i, layer in enumerate(self.layers):
            if i:
                h, e = self.between(h), self.between(e)
            h, e = layer(h, e, graph)
        return self.norm(h), e

    def forward(self, batch: Batch) -> Tensor:
        h, _ = self.states(batch)
        if self.readout_kind == "outputs":
            return readout_features(self.structure, h, (), inputs=False)
        return self.readout(readout_features(self.structure, h, self.pools))
