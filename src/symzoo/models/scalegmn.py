"""ScaleGMN encoder (Kalogeropoulos et al. 2024, "Scale Equivariant Graph Metanetworks").

Message passing on neural graphs that is equivariant to hidden-unit permutations *and* to the activation's
scaling group: sign flips for tanh, positive scalings for ReLU. Under a group element, hidden node i's state
scales by q_i (q in {-1, 1} or q > 0; input and output nodes have q = 1) and the feature of edge j → i by
q_i / q_j. Every map below keeps that:

- ``inv(z)``: invariant features of a vector that scales by one q: ``rho(z) + rho(-z)`` (sign) or
  ``z / sqrt(||z||^2 + eps^2)`` (positive; eps = 1e-6 keeps z = 0 at 0 with a bounded gradient, 1 / eps —
  a zero state is common: a dead ReLU unit keeps its initial bias 0 — and changes the result by a relative
  eps^2 / ||z||^2, far below float32 precision for states of normal size);
  ``symmetry_broken=True`` replaces it with the identity (the paper's ablation, nothing else changes);
- ``ScaleEq(z, ctx) = Lin_nobias(z) ⊙ MLP([inv(z), ctx])`` with an invariant context: homogeneous of degree 1;
- initial states: ``Lin_nobias(bias)`` for hidden and output nodes, a learned vector per input node;
- messages j → i: ``ScaleEq(Lin_nobias(e_ji) ⊙ h_j, [inv(h_i), pos_i])`` (scales by q_i / q_j * q_j = q_i),
  summed; update ``h_i + ScaleEq([h_i, m_i], pos_i)``; edges are not updated;
- readout: per hidden layer the sum of ``inv(h)`` over its nodes, then the output nodes' states (q = 1) → MLP.

Only forward edges (layer l → l + 1) are used: a reverse message e_ji ⊙ h_i scales by q_i^2 / q_j, which is
right for signs (q^2 = 1) but not for positive scalings, so both groups share the forward-only design. The input
nodes then never receive a message: their states are the same for every network, so the readout leaves them out.
Reads per-layer normalised features that are divided but not centred (:attr:`ScaleGMN.center` is False).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing

from symzoo.graph.neural_graph import GraphEmbedding, GraphStructure, readout_dim, readout_features
from symzoo.models.ng_gnn import mlp
from symzoo.nets.symmetry import scaling_group

Group = Literal["sign", "positive"]


EPS = 1e-6
"""Regularises the norm of the positive-scaling invariant z / ||z|| at z = 0."""


class Invariant(nn.Module):
    """``inv(z)`` over the last dimension: invariant when z is scaled by one group element q."""

    def __init__(self, dim: int, group: Group, broken: bool = False) -> None:
        super().__init__()
        if group not in ("sign", "positive"):
            raise ValueError(f"scaling group must be 'sign' or 'positive', not {group!r}")
        self.group, self.broken, self.out_dim = group, broken, dim
        self.rho = mlp([dim, dim, dim]) if group == "sign" and not broken else None

    def forward(self, z: Tensor) -> Tensor:
        if self.broken:
            return z
        if self.rho is not None:
            return self.rho(z) + self.rho(-z)
        return z * ((z * z).sum(dim=-1, keepdim=True) + EPS**2).rsqrt()


class ScaleEq(nn.Module):
    """``Lin_nobias(z) ⊙ MLP([inv(z), ctx])``: equivariant in z (degree 1) for an invariant context ``ctx``.

    The MLP's first layer is split in a z part and a context part; :meth:`project` applies the context part,
    so a per-node context can be projected once and gathered onto edges (the same map, fewer FLOPs).
    """

    def __init__(self, in_dim: int, out_dim: int, ctx_dim: int, group: Group, broken: bool, dropout: float) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.inv = Invariant(in_dim, group, broken)
        self.gate_z = nn.Linear(self.inv.out_dim, out_dim)
        self.gate_ctx = nn.Linear(ctx_dim, out_dim, bias=False)
        self.gate_out = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim))

    def project(self, ctx: Tensor) -> Tensor:
        return self.gate_ctx(ctx)

    def forward(self, z: Tensor, projected_ctx: Tensor) -> Tensor:
        return self.lin(z) * self.gate_out(self.gate_z(self.inv(z)) + projected_ctx)


class ScaleGMNLayer(MessagePassing):
    """One scale-equivariant message-passing layer (sum aggregation, residual update)."""

    def __init__(self, dim: int, edge_dim: int, group: Group, broken: bool, dropout: float) -> None:
        super().__init__(aggr="add", node_dim=0)
        self.edge_lift = nn.Linear(edge_dim, dim, bias=False)
        self.node_inv = Invariant(dim, group, broken)
        self.message_eq = ScaleEq(dim, dim, self.node_inv.out_dim + dim, group, broken, dropout)
        self.update_eq = ScaleEq(2 * dim, dim, dim, group, broken, dropout)

    def forward(self, h: Tensor, e: Tensor, edge_index: Tensor, pos: Tensor) -> Tensor:
        ctx = self.message_eq.project(torch.cat([self.node_inv(h), pos], dim=-1))
        m = self.propagate(edge_index, h=h, e=e, ctx=ctx)
        return h + self.update_eq(torch.cat([h, m], dim=-1), self.update_eq.project(pos))

    def message(self, h_j: Tensor, e: Tensor, ctx_i: Tensor) -> Tensor:
        return self.message_eq(self.edge_lift(e) * h_j, ctx_i)


class ScaleGMN(nn.Module):
    """ScaleGMN encoder: neural-graph batch → latent (B, latent), invariant to permutations and scalings.

    ``group`` defaults to the activation's (sign for tanh, positive for ReLU); ``symmetry_broken`` swaps every
    ``inv`` for the identity. The structure must not have reverse edges.
    """

    center = False  #: per-layer normalisation divides only (a constant per layer commutes with scalings)

    def __init__(
        self,
        structure: GraphStructure,
        hidden: int = 256,
        layers: int = 4,
        latent: int = 128,
        dropout: float = 0.2,
        group: Group | None = None,
        symmetry_broken: bool = False,
    ) -> None:
        super().__init__()
        if structure.reverse_edges:
            raise ValueError("ScaleGMN uses forward edges only: build the structure with reverse_edges=False")
        group = group or scaling_group(structure.spec)
        self.structure, self.latent, self.group = structure, latent, group
        self.embedding = GraphEmbedding(structure, hidden, edges=False)
        self.bias_lift = nn.Linear(1, hidden, bias=False)
        self.input_state = nn.Embedding(structure.spec.sizes[0], hidden)
        self.layers = nn.ModuleList(
            ScaleGMNLayer(hidden, structure.edge_dim, group, symmetry_broken, dropout) for _ in range(layers)
        )
        self.readout_inv = Invariant(hidden, group, symmetry_broken)
        width = readout_dim(structure, self.readout_inv.out_dim, hidden, inputs=False)
        self.readout = mlp([width, hidden, latent], dropout)

    def node_states(self, batch: Batch) -> list[Tensor]:
        """Node states (B*N, hidden) before the first layer and after each layer (all equivariant)."""
        pos = self.embedding.nodes(batch)
        is_input = batch.node_layer == 0
        inputs = self.input_state(torch.where(is_input, batch.node_type, 0))
        h = self.bias_lift(batch.x) + is_input.unsqueeze(1) * inputs
        states = [h]
        for layer in self.layers:
            h = layer(h, batch.edge_attr, batch.edge_index, pos)
            states.append(h)
        return states

    def _pool(self, h: Tensor) -> Tensor:
        return self.readout_inv(h).sum(dim=1)

    def forward(self, batch: Batch) -> Tensor:
        h = self.node_states(batch)[-1]
        return self.readout(readout_features(self.structure, h, (self._pool,), inputs=False))
