"""Vector fields of flow-matching models over network weights: ``v(x, t)``, a batch of networks in, the same out.

A :class:`VelocityField` works in standardised coordinates ``x = (θ - shift) / scale`` of the zoo's flat layout
(:meth:`VelocityField.coordinates`, :meth:`VelocityField.parameters`) and has one of two bodies:

- ``flat``: an MLP on the concatenated parameter vector and a time embedding (no symmetry: it must learn the
  zoo's orbits from data; ``shift`` / ``scale`` the train networks' per-parameter mean and std);
- ``graph``: an equivariant weight-space operator (:mod:`symzoo.models.operators`) conditioned on the time
  embedding as an invariant context; ``shift`` 0 and ``scale`` the per-layer std (a per-layer constant keeps the
  group's action), so ``v(g · x, t) = g · v(x, t)`` for every element g the operator commutes with. With a prior
  that is invariant too (an isotropic Gaussian per layer is invariant to permutations and sign flips), the learned
  density is invariant: a flow over raw weights that gives every point of an orbit the same density.

The time embedding: sinusoidal features of t at geometric frequencies, then an MLP.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from symzoo.models.layers import mlp
from symzoo.nets.spec import NetSpec

FIELDS = ("flat", "graph")
COORDINATES = ("standardized", "whitened")
"""``standardized``: each parameter shifted and scaled (per parameter, or per layer for a graph field);
``whitened`` (flat fields): the train networks' (shrunk) covariance's eigenbasis, scaled to unit variance, so that
the prior N(0, I) is the Gaussian fitted to the train networks and the flow learns what that Gaussian misses."""


@dataclass(frozen=True)
class FieldArch:
    """What defines a vector field: its body ``field`` (:data:`FIELDS`), ``hidden`` width and ``layers``; a graph
    field's ``operator`` kind (``scalegmn``, ``scalegmn_broken``, ``ngnn``) and ``message_passing``; the width
    ``time_dim`` of the sinusoidal time features."""

    field: str
    hidden: int
    layers: int
    operator: str = "scalegmn"
    message_passing: str = "dense"
    time_dim: int = 32
    coordinates: str = "standardized"

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"vector field must be one of {FIELDS}, not {self.field!r}")
        if self.coordinates not in COORDINATES:
            raise ValueError(f"coordinates must be one of {COORDINATES}, not {self.coordinates!r}")
        if self.field == "graph" and self.coordinates == "whitened":
            raise ValueError("a graph field needs per-layer coordinates: whitening mixes units and breaks the symmetry")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even, not {self.time_dim}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> FieldArch:
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name in options})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TimeEmbedding(nn.Module):
    """t (B,) in [0, 1] → (B, out): sin and cos of t at ``dim / 2`` geometric frequencies, then an MLP."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), dim // 2))
        self.register_buffer("freqs", freqs, persistent=False)
        self.net = mlp([dim, out, out])

    def forward(self, t: Tensor) -> Tensor:
        angles = t.reshape(-1, 1) * self.freqs * (2 * math.pi)
        return self.net(torch.cat([angles.sin(), angles.cos()], dim=-1))


class VelocityField(nn.Module):
    """``v(x (B, P), t (B,) or a scalar) -> (B, P)`` in standardised coordinates (see the module docstring)."""

    def __init__(
        self,
        spec: NetSpec,
        arch: FieldArch,
        shift: Tensor | None = None,
        scale: Tensor | None = None,
        basis: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.arch = spec, arch
        p = spec.num_params
        self.register_buffer("shift", torch.zeros(p) if shift is None else shift.detach().float().clone())
        self.register_buffer("scale", torch.ones(p) if scale is None else scale.detach().float().clone())
        if arch.coordinates == "whitened":  # an orthonormal basis (P, P): x = ((θ - shift) @ basis) / scale
            self.register_buffer("basis", torch.eye(p) if basis is None else basis.detach().float().clone())
        else:
            self.basis = None
        self.time = TimeEmbedding(arch.time_dim, arch.hidden)
        if arch.field == "flat":
            self.body = mlp([p + arch.hidden, *([arch.hidden] * arch.layers), p], norm=True)
        else:  # torch-geometric loads only for a graph field
            from symzoo.models.operators import OperatorArch, build_operator

            op = OperatorArch(arch.operator, arch.hidden, arch.layers, arch.message_passing, context=arch.hidden)
            self.body = build_operator(spec, op)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        emb = self.time(t)
        if self.arch.field == "flat":
            return self.body(torch.cat([x, emb], dim=-1))
        return self.body(x, emb)

    def coordinates(self, thetas: Tensor) -> Tensor:
        """Networks (N, P) → the field's coordinates."""
        centred = thetas - self.shift
        return (centred if self.basis is None else centred @ self.basis) / self.scale

    def parameters_of(self, x: Tensor) -> Tensor:
        """The field's coordinates (N, P) → networks in the zoo's layout."""
        scaled = x * self.scale
        return (scaled if self.basis is None else scaled @ self.basis.T) + self.shift

    def log_scale(self) -> Tensor:
        """log |det dθ/dx|: what the change of coordinates adds to a density's log (the basis is orthonormal)."""
        return self.scale.log().sum()

    def config(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "arch": self.arch.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any], state_dict: dict[str, Tensor] | None = None) -> VelocityField:
        model = cls(NetSpec.from_dict(config["spec"]), FieldArch(**config["arch"]))
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model
