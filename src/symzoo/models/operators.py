"""Equivariant weight-space operators: a batch of networks in, a tensor of the same shape and layout out.

An operator reads networks ``thetas`` (B, P) as neural graphs and returns (B, P): a value per bias from its node
states and a value per weight (per kernel tap) from its edge states, in the zoo's own flat layout. What it commutes
with is what its trunk is equivariant to:

- ``scalegmn`` (:class:`ScaleGMNOperator`, "ScaleGMN-B", bidirectional): hidden-unit permutations and the
  activation's scaling group (sign flips for tanh, positive scalings for ReLU): ``op(g · θ) = g · op(θ)``, where
  the output transforms like parameters (a bias of unit i by q_i, a weight j → i by q_i / q_j);
- ``scalegmn_broken``: the same network with every canonicalisation replaced by the identity (the paper's
  "symmetry broken" ablation: same parameters, same connectivity), equivariant to permutations only;
- ``ngnn`` (:class:`NGGNNOperator`): NG-GNN's trunk (edge updates, FiLM messages, PNA, reverse edges) with a bias
  head on the nodes and a weight head on the forward edges; permutations only.

An optional invariant ``context`` (B, c) per network, e.g. a time embedding, conditions every layer, which is how a
flow-matching vector field uses the same operator. :class:`Finetuner` wraps an operator as the single-shot
fine-tuner of the amortisation paper: ``θ' = θ + γ_l ⊙ op(θ)`` with one learnable γ per layer for weights and one
for biases. Outputs are in the parameters' own units: the heads' outputs are multiplied by the zoo's per-layer
standard deviations (a per-layer constant keeps every symmetry).

The ScaleGMN-B layer. Hidden node i's state h_i scales by q_i, input and output nodes' by 1, and the state e_ji of
the edge j → i by q_i / q_j. Per layer, with inv the canonicalisation of :class:`~symzoo.models.scalegmn.Invariant`:

- forward messages: ``a_ji = e_ji ⊙ V h_j`` (scales by q_i), ``m_i = Σ_j a_ji``;
- per edge, invariant features of the pair (a_ji, h_i) that scale together by q_i, projected (:class:`PairProjection`:
  ``u_ji``), with the canonicalised end states: ``t_ji = SiLU(LN(u_ji + S [inv(h_j), pos_j] + D [inv(h_i), pos_i]))``;
- edge update: ``e_ji ← e_ji + W e_ji ⊙ G t_ji`` (scales by q_i / q_j);
- backward messages: ``s_j = Σ_i t_ji``, invariant: what the successors of j say about it, canonicalised. (The
  reference's bidirectional ScaleGMN sends reverse messages along reciprocal weights 1/w; that keeps positive-scale
  equivariance too, but 1 / w is unbounded near w = 0 and infinite in a CNN's zero-padded kernel slots. An invariant
  backward message carried by the node's own state loses no symmetry and never divides.)
- node update: hidden nodes ``h_i ← h_i + ScaleEq([h_i, m_i], [pos_i, s_i])`` (degree-1 equivariant), input and
  output nodes (q = 1) ``h ← h + MLP([h, m, s, pos])``; LayerNorm inside every gate and MLP.

The bias of node i is ``b_out h_i`` and the weight j → i ``W_out e_ji`` (both without bias terms, so they scale as
the parameters do).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from symzoo.graph.dense import DenseGraph, SparseGraph, graph_ops
from symzoo.graph.neural_graph import GraphStructure, to_batch, to_params
from symzoo.graph.stats import LayerStats, normalize
from symzoo.models.layers import GraphEmbedding, mlp
from symzoo.models.ng_gnn import NGGNN
from symzoo.models.scalegmn import EPS, Group, Invariant, NodeLayout, ScaleEq
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import scaling_group

if TYPE_CHECKING:  # annotations only: torch-geometric loads when a batch is built
    from torch_geometric.data import Batch

OPERATOR_KINDS = ("scalegmn", "scalegmn_broken", "ngnn")


@dataclass(frozen=True)
class OperatorArch:
    """What defines an operator besides the networks it reads: ``kind`` (:data:`OPERATOR_KINDS`), ``hidden`` width,
    message-passing ``layers``, ``message_passing`` (``dense`` or ``pyg``: the same function) and ``context``, the
    width of an optional invariant conditioning vector per network (0: none)."""

    kind: str
    hidden: int
    layers: int
    message_passing: str = "dense"
    context: int = 0

    def __post_init__(self) -> None:
        if self.kind not in OPERATOR_KINDS:
            raise ValueError(f"operator kind must be one of {OPERATOR_KINDS}, not {self.kind!r}")
        if self.message_passing not in ("dense", "pyg"):
            raise ValueError(f"message_passing must be 'dense' or 'pyg', not {self.message_passing!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> OperatorArch:
        """The architecture keys of a validated config entry (other keys are ignored)."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name in options})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PairProjection(nn.Module):
    """``W inv(a_ji, h_i) + c`` per edge j → i: a linear map of invariant features of the pair (a_ji, h_i), two
    vectors that scale together by q_i.

    Positive scalings: ``inv = [a, h] / ||[a, h]||`` (regularised at 0 like :class:`~symzoo.models.scalegmn.Invariant`);
    sign flips: ``inv = [a ⊙ h, |a|, |h|]`` (the products keep the relative signs); ``broken``: ``[a, h]``. The map is
    split by input, so every term that depends on the node alone is computed once per node and gathered onto its
    edges (the same function, a third to a half fewer per-edge products).
    """

    def __init__(self, dim: int, group: Group, broken: bool = False) -> None:
        super().__init__()
        self.group, self.broken = group, broken
        self.edge = nn.Linear(dim, dim)  # the term in a (a ⊙ h for the sign group)
        self.magnitude = nn.Linear(dim, dim, bias=False) if group == "sign" and not broken else None  # |a|
        self.node = nn.Linear(dim, dim, bias=False)  # the term in h (|h| for the sign group)

    def forward(self, a: Tensor, h: Tensor, graph: DenseGraph | SparseGraph) -> Tensor:
        if self.broken:
            return self.edge(a) + graph.target(self.node(h))
        if self.group == "sign":
            return self.edge(a * graph.target(h)) + self.magnitude(a.abs()) + graph.target(self.node(h.abs()))
        norms = (a * a).sum(-1, keepdim=True) + graph.target((h * h).sum(-1, keepdim=True)) + EPS**2
        return (F.linear(a, self.edge.weight) + graph.target(self.node(h))) * norms.rsqrt() + self.edge.bias


class ScaleGMNOperatorLayer(nn.Module):
    """One ScaleGMN-B layer on node states h (B*N, d) and edge states e (B*E, d) (see the module docstring)."""

    def __init__(self, dim: int, group: Group, broken: bool) -> None:
        super().__init__()
        self.value = nn.Linear(dim, dim, bias=False)
        self.node_inv = Invariant(dim, group, broken)
        self.pair = PairProjection(dim, group, broken)
        self.src_in = nn.Linear(self.node_inv.out_dim + dim, dim, bias=False)
        self.dst_in = nn.Linear(self.node_inv.out_dim + dim, dim, bias=False)
        self.edge_norm = nn.LayerNorm(dim)
        self.edge_lin = nn.Linear(dim, dim, bias=False)
        self.edge_gate = nn.Linear(dim, dim)
        self.update_eq = ScaleEq(2 * dim, dim, 2 * dim, group, broken, 0.0, norm=True)
        self.io_update = mlp([4 * dim, dim, dim], norm=True)

    def forward(
        self, h: Tensor, e: Tensor, pos: Tensor, graph: DenseGraph | SparseGraph, layout: NodeLayout
    ) -> tuple[Tensor, Tensor]:
        ctx = torch.cat([self.node_inv(h), pos], dim=-1)
        a = graph.times_source(e, self.value(h))
        m = graph.sum(a)
        u = self.pair(a, h, graph)
        t = F.silu(self.edge_norm(graph.add_endpoints(u, self.src_in(ctx), self.dst_in(ctx))))
        e = e + self.edge_lin(e) * self.edge_gate(t)
        s = graph.sum_at_source(t)
        inputs, hidden, outputs = layout.split(h)
        parts = [layout.split(v) for v in (m, s, pos)]
        (_, m_hidden, _), (_, s_hidden, _), (_, pos_hidden, _) = parts
        context = self.update_eq.project(torch.cat([pos_hidden, s_hidden], dim=-1))
        hidden = hidden + self.update_eq(torch.cat([hidden, m_hidden], dim=-1), context)
        io = [
            state + self.io_update(torch.cat([state, *(p[k] for p in parts)], dim=-1))
            for k, state in ((0, inputs), (2, outputs))
        ]
        return layout.join(io[0], hidden, io[1]), e


class ScaleGMNOperator(nn.Module):
    """The ScaleGMN-B trunk: normalised neural-graph batch (forward edges only) → node outputs (B*N, 1) and edge
    outputs (B*E, edge_dim), equivariant to permutations and to the scaling group ``group`` (default: the
    activation's); ``symmetry_broken`` replaces every canonicalisation by the identity."""

    center = False  #: per-layer normalisation divides only (a constant per layer commutes with scalings)

    def __init__(
        self,
        structure: GraphStructure,
        *,
        hidden: int,
        layers: int,
        dense: bool,
        context: int = 0,
        group: Group | None = None,
        symmetry_broken: bool = False,
    ) -> None:
        super().__init__()
        if structure.reverse_edges:
            raise ValueError("ScaleGMN-B runs both directions on the forward edges: build them without reverse_edges")
        group = group or scaling_group(structure.spec)
        self.structure, self.group, self.dense = structure, group, dense
        self.embedding = GraphEmbedding(structure, hidden, edges=False)
        self.context = nn.Linear(context, hidden) if context else None
        self.bias_lift = nn.Linear(1, hidden, bias=False)
        self.edge_lift = nn.Linear(structure.edge_dim, hidden, bias=False)
        self.input_state = nn.Embedding(structure.spec.sizes[0], hidden)
        self.layers = nn.ModuleList(ScaleGMNOperatorLayer(hidden, group, symmetry_broken) for _ in range(layers))
        self.bias_out = nn.Linear(hidden, 1, bias=False)
        self.weight_out = nn.Linear(hidden, structure.edge_dim, bias=False)

    def forward(self, batch: Batch, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        graph = graph_ops(self.structure, batch, self.dense)
        layout = NodeLayout(self.structure, batch.num_graphs)
        pos = self.embedding.nodes(batch) + _per_node(self.context, context, self.structure)
        is_input = batch.node_layer == 0
        h = self.bias_lift(batch.x) + is_input.unsqueeze(1) * self.input_state(
            torch.where(is_input, batch.node_type, 0)
        )
        e = self.edge_lift(batch.edge_attr)
        for layer in self.layers:
            h, e = layer(h, e, pos, graph, layout)
        return self.bias_out(h), self.weight_out(e)


class NGGNNOperator(nn.Module):
    """NG-GNN's trunk (:class:`~symzoo.models.ng_gnn.NGGNN` with reverse edges) with a bias head on the node
    states and a weight head on the edge states: permutation-equivariant, not scale-equivariant."""

    center = True  #: reads centred, per-layer normalised features (as the NG-GNN encoder)

    def __init__(self, structure: GraphStructure, *, hidden: int, layers: int, dense: bool, context: int = 0) -> None:
        super().__init__()
        self.structure = structure
        self.trunk = NGGNN(
            structure, hidden=hidden, layers=layers, latent=1, dropout=0.0, readout="outputs", dense=dense
        )
        self.context = nn.Linear(context, hidden) if context else None
        self.bias_out = nn.Linear(hidden, 1)
        self.weight_out = nn.Linear(hidden, structure.edge_dim)

    def forward(self, batch: Batch, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h, e = self.trunk.states(batch, _per_node(self.context, context, self.structure))
        return self.bias_out(h), self.weight_out(e)


def _per_node(project: nn.Module | None, context: Tensor | None, structure: GraphStructure) -> Tensor | float:
    """The projected context of every network (B, c) repeated for each of its nodes (B*N, d); 0 without one."""
    if project is None and context is None:
        return 0.0
    if project is None or context is None:
        raise ValueError("operator: give a context exactly when the operator was built with one (arch.context > 0)")
    return project(context).repeat_interleave(structure.num_nodes, dim=0)


class WeightSpaceOperator(nn.Module):
    """``op(thetas (B, P), context (B, c) | None) -> (B, P)``: a trunk's node and edge outputs in the zoo's layout,
    in the parameters' units (times the per-layer standard deviations ``stats``, fitted on the training networks)."""

    def __init__(self, trunk: nn.Module, structure: GraphStructure, stats: LayerStats, arch: OperatorArch) -> None:
        super().__init__()
        self.trunk, self.structure, self.stats, self.arch = trunk, structure, stats, arch
        std, _ = stats.per_parameter(structure.spec)
        self.register_buffer("unit", std)

    @property
    def spec(self) -> NetSpec:
        return self.structure.spec

    def forward(self, thetas: Tensor, context: Tensor | None = None) -> Tensor:
        batch = normalize(to_batch(self.structure, thetas), self.stats, center=self.trunk.center)
        nodes, edges = self.trunk(batch, context)
        out = copy.copy(batch)
        out.x, out.edge_attr = nodes, edges
        return to_params(self.structure, out) * self.unit


def build_operator(spec: NetSpec, arch: OperatorArch, thetas_train: Tensor | None = None) -> WeightSpaceOperator:
    """An operator of ``arch`` for networks of ``spec``; ``thetas_train`` (N, P) fits the per-layer statistics
    (neutral without it, e.g. before loading a ``state_dict``)."""
    structure = GraphStructure.from_spec(spec, reverse_edges=arch.kind == "ngnn")
    sizes = {"hidden": arch.hidden, "layers": arch.layers, "dense": arch.message_passing == "dense"}
    if arch.kind == "ngnn":
        trunk: nn.Module = NGGNNOperator(structure, **sizes, context=arch.context)
    else:
        trunk = ScaleGMNOperator(structure, **sizes, context=arch.context, symmetry_broken=arch.kind.endswith("broken"))
    stats = LayerStats.identity(structure) if thetas_train is None else LayerStats.fit(structure, thetas_train)
    return WeightSpaceOperator(trunk, structure, stats, arch)


class Finetuner(nn.Module):
    """The single-shot fine-tuner: ``θ' = θ + γ ⊙ op(θ)``, γ one learnable scalar per layer for its weights and
    one for its biases (initialised at ``gamma``: 0.01 in the reference; 0 makes θ' = θ exactly)."""

    def __init__(self, operator: WeightSpaceOperator, gamma: float) -> None:
        super().__init__()
        spec = operator.spec
        self.operator, self.gamma_init = operator, gamma
        self.gamma = nn.Parameter(torch.full((len(spec.layout),), float(gamma)))
        slot = torch.cat([torch.full((t.size,), i) for i, t in enumerate(spec.layout)])
        self.register_buffer("slot", slot, persistent=False)

    @property
    def spec(self) -> NetSpec:
        return self.operator.spec

    def forward(self, thetas: Tensor) -> Tensor:
        return thetas + self.gamma[self.slot] * self.operator(thetas)

    def config(self) -> dict[str, Any]:
        """JSON-ready description that :meth:`from_config` rebuilds this model from."""
        return {"spec": self.spec.to_dict(), "arch": self.operator.arch.to_dict(), "gamma": self.gamma_init}

    @classmethod
    def from_config(cls, config: dict[str, Any], state_dict: dict[str, Tensor] | None = None) -> Finetuner:
        model = cls(build_operator(NetSpec.from_dict(config["spec"]), OperatorArch(**config["arch"])), config["gamma"])
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model
