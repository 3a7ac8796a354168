"""Per-layer normalisation of neural graphs.

:class:`LayerStats` holds per-layer (not per-neuron) statistics of biases and weights, fitted on a zoo's train
split: a per-layer constant commutes with permutations and, when only dividing (``center=False``), with
per-neuron sign flips and scalings too, so normalising keeps every symmetry the encoders rely on.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from symzoo.graph.neural_graph import GraphStructure
from symzoo.nets.spec import NetSpec, ParamSlot

if TYPE_CHECKING:
    from torch_geometric.data import Batch


class LayerStats(nn.Module):
    """Per-layer normalisation statistics of biases and weights, fitted on the training split.

    Buffers (saved in a ``state_dict``), indexed by node layer for biases and by weight layer for weights:
    ``bias_mean`` / ``bias_std`` (L + 1,) (input layer: 0 / 1), ``weight_mean`` (L, edge_dim) (the layer's mean
    in the slots it uses, 0 in padding slots, so centring keeps padding at 0) and ``weight_std`` (L,).
    A fresh instance is the identity (means 0, stds 1).
    """

    def __init__(self, num_layers: int, edge_dim: int) -> None:
        super().__init__()
        self.register_buffer("bias_mean", torch.zeros(num_layers + 1))
        self.register_buffer("bias_std", torch.ones(num_layers + 1))
        self.register_buffer("weight_mean", torch.zeros(num_layers, edge_dim))
        self.register_buffer("weight_std", torch.ones(num_layers))

    @classmethod
    def identity(cls, structure: GraphStructure) -> LayerStats:
        return cls(structure.spec.num_layers, structure.edge_dim)

    @classmethod
    def fit(cls, structure: GraphStructure, thetas_train: Tensor | np.ndarray, min_std: float = 1e-8) -> LayerStats:
        """Mean and std of every layer's biases and weights over the training networks ``thetas_train`` (N, P).

        A numpy array (e.g. a memory-mapped zoo) is read one layer's columns at a time.
        """
        spec = structure.spec
        stats = cls.identity(structure)

        def mean_std(t: ParamSlot) -> tuple[Tensor, Tensor]:
            part = thetas_train[:, t.offset : t.stop]
            values = part.double() if isinstance(part, Tensor) else torch.from_numpy(np.array(part, np.float64))
            std = values.std() if values.numel() > 1 else values.new_tensor(0.0)
            return values.mean(), std if std > min_std else std.new_tensor(1.0)

        for layer in range(spec.num_layers):
            stats.bias_mean[layer + 1], stats.bias_std[layer + 1] = mean_std(spec.tensor(layer, "bias"))
            stats.weight_mean[layer], stats.weight_std[layer] = mean_std(spec.tensor(layer, "weight"))
        used = (structure.weight_index[: structure.num_forward_edges] >= 0).double()
        per_layer = torch.zeros(spec.num_layers, structure.edge_dim, dtype=torch.float64)
        per_layer.index_add_(0, structure.edge_layer[: structure.num_forward_edges], used)
        stats.weight_mean *= per_layer > 0
        return stats

    def per_parameter(self, spec: NetSpec) -> tuple[Tensor, Tensor]:
        """The statistics expanded to the flat layout: (std, mean), each (P,), for every parameter."""
        std, mean = (torch.empty(spec.num_params, device=self.bias_std.device) for _ in range(2))
        dense_slot = self.weight_mean.shape[1] // 2  # a slot every layer uses (GraphStructure.dense_slot)
        for layer in range(spec.num_layers):
            w, b = spec.tensor(layer, "weight"), spec.tensor(layer, "bias")
            std[w.offset : w.stop], mean[w.offset : w.stop] = (
                self.weight_std[layer],
                self.weight_mean[layer, dense_slot],
            )
            std[b.offset : b.stop], mean[b.offset : b.stop] = self.bias_std[layer + 1], self.bias_mean[layer + 1]
        return std, mean


def normalize(batch: Batch, stats: LayerStats, center: bool) -> Batch:
    """A shallow copy of ``batch`` with per-layer normalised ``x`` and ``edge_attr``.

    ``center=False`` only divides by the per-layer std, which keeps sign and positive-scale equivariance.
    Input nodes and padding slots stay 0.
    """
    out = copy.copy(batch)
    x_std, e_std = stats.bias_std[batch.node_layer], stats.weight_std[batch.edge_layer]
    if center:
        out.x = (batch.x - stats.bias_mean[batch.node_layer].unsqueeze(1)) / x_std.unsqueeze(1)
        out.edge_attr = (batch.edge_attr - stats.weight_mean[batch.edge_layer]) / e_std.unsqueeze(1)
    else:
        out.x = batch.x / x_std.unsqueeze(1)
        out.edge_attr = batch.edge_attr / e_std.unsqueeze(1)
    return out
