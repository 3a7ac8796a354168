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
- messages j → i: ``Lin_nobias(e_ji) ⊙ h_j`` (scales by q_i / q_j * q_j = q_i), optionally through
  ``ScaleEq(·, [inv(h_i), pos_i])``, summed; hidden nodes update ``h_i + ScaleEq([h_i, m_i], pos_i)``, input and
  output nodes (q = 1) ``h_i + MLP([h_i, m_i, pos_i])``; edges are not updated (the reference updates them);
- readout: per hidden layer the sum of ``phi(inv(h))`` over its nodes, then the output nodes' states → MLP.

Only forward edges (layer l → l + 1) are used: a reverse message e_ji ⊙ h_i scales by q_i^2 / q_j, which is
right for signs (q^2 = 1) but not for positive scalings, so both groups share the forward-only design. The input
nodes then never receive a message: their states are the same for every network, so the readout leaves them out.
Reads per-layer normalised features that are divided but not centred (:attr:`ScaleGMN.center` is False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symzoo.graph.dense import DenseGraph, SparseGraph, graph_ops
from symzoo.graph.neural_graph import GraphStructure
from symzoo.models.layers import GraphEmbedding, mlp, readout_dim, readout_features
from symzoo.nets.symmetry import scaling_group

if TYPE_CHECKING:  # annotations only: torch-geometric loads when a batch is built
    from torch_geometric.data import Batch

Group = Literal["sign", "positive"]
MESSAGES = ("bilinear", "mlp")


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
            # rho(z) + rho(-z) with rho = B(SiLU(A z + a)) + b, computed with one product by A and one by B:
            # B(SiLU(A z + a) + SiLU(-A z + a)) + 2b (the same function, half the work)
            first, _, last = self.rho
            u = F.linear(z, first.weight)
            return F.linear(F.silu(u + first.bias) + F.silu(first.bias - u), last.weight, 2 * last.bias)
        return z * ((z * z).sum(dim=-1, keepdim=True) + EPS**2).rsqrt()


class ScaleEq(nn.Module):
    """``Lin_nobias(z) ⊙ MLP([inv(z), ctx])``: equivariant in z (degree 1) for an invariant context ``ctx``.

    The MLP's first layer is split in a z part and a context part; :meth:`project` applies the context part,
    so a per-node context can be projected once and gathered onto edges (the same map, fewer FLOPs).
    ``norm`` puts a LayerNorm on the gate's hidden layer (it sees invariant features only, so the map stays
    equivariant).
    """

    def __init__(
        self, in_dim: int, out_dim: int, ctx_dim: int, group: Group, broken: bool, dropout: float, norm: bool = False
    ) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.inv = Invariant(in_dim, group, broken)
        self.gate_z = nn.Linear(self.inv.out_dim, out_dim)
        self.gate_ctx = nn.Linear(ctx_dim, out_dim, bias=False)
        hidden = [nn.LayerNorm(out_dim)] if norm else []
        self.gate_out = nn.Sequential(*hidden, nn.SiLU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim))

    def project(self, ctx: Tensor) -> Tensor:
        return self.gate_ctx(ctx)

    def forward(self, z: Tensor, projected_ctx: Tensor) -> Tensor:
        return self.lin(z) * self.gate_out(self.gate_z(self.inv(z)) + projected_ctx)


class ScaleGMNLayer(nn.Module):
    """One scale-equivariant message-passing layer (sum aggregation, residual update).

    Messages j → i: ``Lin_nobias(e_ji) ⊙ h_j`` (``message="bilinear"``: one elementwise product per edge; per
    kernel tap this is the network's own forward pass applied to d probe vectors) or that product passed through
    ``ScaleEq(·, [inv(h_i), pos_i])`` (``message="mlp"``, the reference's per-edge MLP: ~d² more work per edge).
    Hidden nodes: ``h + ScaleEq([h, m], pos)``; input and output nodes (no scaling symmetry): an unconstrained
    ``h + MLP([h, m, pos])``.
    """

    def __init__(self, dim: int, edge_dim: int, group: Group, broken: bool, dropout: float, message: str) -> None:
        super().__init__()
        if message not in MESSAGES:
            raise ValueError(f"ScaleGMN message must be one of {MESSAGES}, not {message!r}")
        self.edge_lift = nn.Linear(edge_dim, dim, bias=False)
        self.node_inv = Invariant(dim, group, broken)
        self.message_eq = (
            ScaleEq(dim, dim, self.node_inv.out_dim + dim, group, broken, dropout) if message == "mlp" else None
        )
        self.update_eq = ScaleEq(2 * dim, dim, dim, group, broken, dropout)
        self.io_update = mlp([3 * dim, dim, dim], dropout)

    def forward(self, h: Tensor, e: Tensor, pos: Tensor, graph: DenseGraph | SparseGraph, layout: NodeLayout) -> Tensor:
        if self.message_eq is None:
            m = graph.bilinear_sum(e, self.edge_lift.weight.T, h)
        else:
            ctx = self.message_eq.project(torch.cat([self.node_inv(h), pos], dim=-1))
            m = graph.sum(self.message_eq(graph.times_source(self.edge_lift(e), h), graph.target(ctx)))
        inputs, hidden, outputs = layout.split(h)
        _, m_hidden, m_outputs = layout.split(m)
        _, pos_hidden, pos_outputs = layout.split(pos)
        hidden = hidden + self.update_eq(torch.cat([hidden, m_hidden], dim=-1), self.update_eq.project(pos_hidden))
        outputs = outputs + self.io_update(torch.cat([outputs, m_outputs, pos_outputs], dim=-1))
        return layout.join(inputs, hidden, outputs)


class NodeLayout:
    """Splits node tensors (B*N, d) of a batch into its input, hidden and output nodes (each (B, n, d)), and back.

    Input nodes receive no message (forward edges only), so their states stay the learned input embedding.
    """

    def __init__(self, structure: GraphStructure, batch_size: int) -> None:
        self.batch_size, self.num_nodes = batch_size, structure.num_nodes
        self.first_hidden, self.first_output = structure.layer_start[1], structure.layer_start[-2]

    def split(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        t = t.reshape(self.batch_size, self.num_nodes, t.shape[-1])
        return t[:, : self.first_hidden], t[:, self.first_hidden : self.first_output], t[:, self.first_output :]

    def join(self, *parts: Tensor) -> Tensor:
        return torch.cat(parts, dim=1).reshape(self.batch_size * self.num_nodes, parts[0].shape[-1])


class ScaleGMN(nn.Module):
    """ScaleGMN encoder: neural-graph batch → latent (B, latent), invariant to permutations and scalings.

    ``group`` defaults to the activation's (sign for tanh, positive for ReLU); ``symmetry_broken`` swaps every
    ``inv`` for the identity. Dropout between layers. Readout: per hidden layer the sum over its nodes of
    ``phi(inv(h))`` (an MLP phi on the canonicalised states), then the output nodes' states, → MLP. The structure
    must not have reverse edges. ``dense`` picks the message-passing path (:mod:`symzoo.graph.dense`).
    """

    center = False  #: per-layer normalisation divides only (a constant per layer commutes with scalings)

    def __init__(
        self,
        structure: GraphStructure,
        *,
        hidden: int,
        layers: int,
        latent: int,
        dropout: float,
        message: str,
        dense: bool,
        group: Group | None = None,
        symmetry_broken: bool = False,
    ) -> None:
        super().__init__()
        if structure.reverse_edges:
            raise ValueError("ScaleGMN uses forward edges only: build the structure with reverse_edges=False")
        group = group or scaling_group(structure.spec)
        self.structure, self.latent, self.group, self.dense = structure, latent, group, dense
        self.embedding = GraphEmbedding(structure, hidden, edges=False)
        self.bias_lift = nn.Linear(1, hidden, bias=False)
        self.input_state = nn.Embedding(structure.spec.sizes[0], hidden)
        self.layers = nn.ModuleList(
            ScaleGMNLayer(hidden, structure.edge_dim, group, symmetry_broken, dropout, message) for _ in range(layers)
        )
        self.between = nn.Dropout(dropout)
        self.readout_inv = Invariant(hidden, group, symmetry_broken)
        self.phi = mlp([self.readout_inv.out_dim, hidden, hidden])
        width = readout_dim(structure, hidden, hidden, inputs=False)
        self.readout = mlp([width, hidden, latent], dropout)

    def node_states(self, batch: Batch) -> list[Tensor]:
        """Node states (B*N, hidden) before the first layer and after each layer (all equivariant)."""
        graph = graph_ops(self.structure, batch, self.dense)
        pos = self.embedding.nodes(batch)
        layout = NodeLayout(self.structure, batch.num_graphs)
        is_input = batch.node_layer == 0
        inputs = self.input_state(torch.where(is_input, batch.node_type, 0))
        h = self.bias_lift(batch.x) + is_input.unsqueeze(1) * inputs
        states = [h]
        for i, layer in enumerate(self.layers):
            h = layer(self.between(h) if i else h, batch.edge_attr, pos, graph, layout)
            states.append(h)
        return states

    def _pool(self, h: Tensor) -> Tensor:
        return self.phi(self.readout_inv(h)).sum(dim=1)

    def forward(self, batch: Batch) -> Tensor:
        h = self.node_states(batch)[-1]
        return self.readout(readout_features(self.structure, h, (self._pool,), inputs=False))
