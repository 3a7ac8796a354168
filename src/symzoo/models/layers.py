"""Building blocks shared by the encoders: MLPs, positional embeddings of neural graphs, invariant readouts."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from symzoo.graph.neural_graph import GraphStructure

if TYPE_CHECKING:  # annotations only: torch-geometric loads when a graph model runs
    from torch_geometric.data import Batch


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[torch.device]:
    """Run a block with ``model`` in eval mode (its mode restored afterwards); yields the model's device."""
    was_training = model.training
    model.eval()
    try:
        yield next(model.parameters()).device
    finally:
        model.train(was_training)


def mlp(dims: Sequence[int], dropout: float = 0.0, bias: bool = True, norm: bool = False) -> nn.Sequential:
    """Linear layers ``dims[0] → ... → dims[-1]`` with SiLU (and dropout) between them, none after the last;
    ``norm``: a LayerNorm before each SiLU."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        if i:
            if norm:
                layers.append(nn.LayerNorm(d_in))
            layers.append(nn.SiLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d_in, d_out, bias=bias))
    return nn.Sequential(*layers)


class GraphEmbedding(nn.Module):
    """Learned positional embeddings of a neural graph (shared by the encoders).

    ``nodes(batch)``: node-type embedding + node-layer embedding (N_total, dim); ``edges(batch)``: edge-layer
    embedding + edge-direction embedding (E_total, dim; only with ``edges=True``). Both are invariant under
    the hidden-unit symmetries (all nodes of a hidden layer share their type).
    """

    def __init__(self, structure: GraphStructure, dim: int, edges: bool = True) -> None:
        super().__init__()
        self.node_type = nn.Embedding(structure.num_node_types, dim)
        self.node_layer = nn.Embedding(structure.num_layers, dim)
        if edges:
            self.edge_layer = nn.Embedding(structure.spec.num_layers, dim)
            self.edge_dir = nn.Embedding(2, dim)

    def nodes(self, batch: Batch) -> Tensor:
        return self.node_type(batch.node_type) + self.node_layer(batch.node_layer)

    def edges(self, batch: Batch) -> Tensor:
        return self.edge_layer(batch.edge_layer) + self.edge_dir(batch.edge_dir)


def readout_features(
    structure: GraphStructure,
    h: Tensor,
    hidden_pools: tuple[Callable[[Tensor], Tensor], ...],
    inputs: bool = True,
    outputs: bool = True,
) -> Tensor:
    """Per-graph features (B, D) from node features ``h`` (B*N, F) at fixed, symmetry-invariant positions.

    For every hidden layer, each pool in ``hidden_pools`` maps that layer's nodes (B, n_l, F) to (B, F');
    then the features of the input nodes (optional) and of the output nodes (optional), in their fixed order.
    """
    h = h.reshape(-1, structure.num_nodes, h.shape[-1])
    parts = [
        pool(h[:, structure.layer_nodes(layer)])
        for layer in range(1, structure.num_layers - 1)
        for pool in hidden_pools
    ]
    if inputs:
        parts.append(h[:, structure.layer_nodes(0)].flatten(1))
    if outputs:
        parts.append(h[:, structure.layer_nodes(structure.num_layers - 1)].flatten(1))
    return torch.cat(parts, dim=1)


def readout_dim(structure: GraphStructure, pooled: int, dim: int, inputs: bool = True, outputs: bool = True) -> int:
    """Width of :func:`readout_features` with ``pooled`` features per hidden layer and ``dim`` per node."""
    sizes = structure.spec.sizes
    return (len(sizes) - 2) * pooled + (sizes[0] * inputs + sizes[-1] * outputs) * dim
