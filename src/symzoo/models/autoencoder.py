"""Weight-space autoencoder: graph metanetwork encoder → invariant latent → MLP decoder → flat parameters.

The encoder (NG-GNN or ScaleGMN) sees the per-layer normalised neural graphs of the networks; the decoder
maps the latent to the flat parameters of one (canonical) network in the spec's layout. A saved model is
``{"config": ae.config(), "state_dict": ae.state_dict()}`` and comes back with :meth:`Autoencoder.from_config`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from symzoo.graph.neural_graph import GraphStructure, LayerStats, normalize, to_batch
from symzoo.models.ng_gnn import NGGNN, mlp
from symzoo.models.scalegmn import ScaleGMN
from symzoo.nets.spec import NetSpec

Kind = Literal["ngnn", "scalegmn", "scalegmn_broken"]
KINDS: tuple[str, ...] = ("ngnn", "scalegmn", "scalegmn_broken")


def fan_in_scale(spec: NetSpec) -> Tensor:
    """LeCun-style scale 1 / sqrt(fan_in) of each parameter's layer (weights and biases alike), (P,)."""
    scale = torch.empty(spec.num_params)
    for layer in range(spec.num_layers):
        w, b = spec.tensor(layer, "weight"), spec.tensor(layer, "bias")
        scale[w.offset : b.stop] = math.prod(w.shape[1:]) ** -0.5
    return scale


class Decoder(nn.Module):
    """MLP latent d → 2d → 4d → P; output ``shift + scale * mlp(z)`` in the spec's flat layout.

    ``scale`` / ``shift`` (P,) are buffers: the zoo's per-layer std / mean (:meth:`LayerStats.per_parameter`),
    else ``fan_in_scale`` and 0. The last layer starts with weights x 0.1 and a random N(0, init_std^2) bias,
    so every latent first decodes to (nearly) one random network with weights ``init_std`` times the zoo's
    scale: small, yet with non-zero gradients for every layer.
    """

    def __init__(
        self,
        spec: NetSpec,
        latent: int,
        scale: Tensor | None = None,
        shift: Tensor | None = None,
        init_std: float = 0.5,
    ) -> None:
        super().__init__()
        self.net = mlp([latent, 2 * latent, 4 * latent, spec.num_params])
        self.register_buffer("scale", fan_in_scale(spec) if scale is None else scale.clone().float())
        self.register_buffer("shift", torch.zeros(spec.num_params) if shift is None else shift.clone().float())
        out = self.net[-1]
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.normal_(0.0, init_std)

    def forward(self, z: Tensor) -> Tensor:
        return self.shift + self.scale * self.net(z)


class Autoencoder(nn.Module):
    """``encode(thetas) -> (B, latent)``, ``forward(thetas) -> reconstructed thetas (B, P)``."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: Decoder,
        structure: GraphStructure,
        stats: LayerStats,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.stats = encoder, decoder, stats
        self.structure = structure
        self._config = dict(config or {})

    @property
    def spec(self) -> NetSpec:
        return self.structure.spec

    def encode(self, thetas: Tensor) -> Tensor:
        """Latents (B, latent) of networks ``thetas`` (B, P): graph by indexing, per-layer normalisation, encoder."""
        batch = normalize(to_batch(self.structure, thetas), self.stats, center=self.encoder.center)
        return self.encoder(batch)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, thetas: Tensor) -> Tensor:
        return self.decode(self.encode(thetas))

    def config(self) -> dict[str, Any]:
        """JSON-ready arguments of :func:`build_autoencoder` (spec included) that rebuild this model."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict[str, Any], state_dict: dict[str, Tensor] | None = None) -> Autoencoder:
        """Rebuild from :meth:`config` (statistics and weights then come from ``state_dict``, if given)."""
        args = {k: v for k, v in config.items() if k != "spec"}
        model = build_autoencoder(NetSpec.from_dict(config["spec"]), **args)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model


def build_autoencoder(
    spec: NetSpec,
    kind: Kind = "scalegmn",
    hidden: int = 256,
    layers: int = 4,
    latent: int = 128,
    dropout: float = 0.2,
    thetas_train: Tensor | None = None,
) -> Autoencoder:
    """An autoencoder for networks of ``spec`` with a ``kind`` encoder (NG-GNN, ScaleGMN or its ablation).

    ``thetas_train`` (N, P), the training split, fits the per-layer statistics of the encoder's input and the
    decoder's output scale; without it both are neutral (e.g. before loading a ``state_dict``).
    NG-GNN uses reverse edges (so input nodes receive messages), ScaleGMN forward edges only.
    """
    if kind not in KINDS:
        raise ValueError(f"encoder kind must be one of {KINDS}, not {kind!r}")
    structure = GraphStructure.from_spec(spec, reverse_edges=kind == "ngnn")
    sizes = {"hidden": hidden, "layers": layers, "latent": latent, "dropout": dropout}
    if kind == "ngnn":
        encoder: nn.Module = NGGNN(structure, **sizes)
    else:
        encoder = ScaleGMN(structure, **sizes, symmetry_broken=kind == "scalegmn_broken")
    if thetas_train is None:
        stats, decoder = LayerStats.identity(structure), Decoder(spec, latent)
    else:
        stats = LayerStats.fit(structure, thetas_train)
        std, mean = stats.per_parameter(spec)
        decoder = Decoder(spec, latent, scale=std, shift=mean)
    config = {"spec": spec.to_dict(), "kind": kind, **sizes}
    return Autoencoder(encoder, decoder, structure, stats, config)
