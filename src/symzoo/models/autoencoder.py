"""Weight-space autoencoder: graph metanetwork encoder → invariant latent → MLP decoder → flat parameters.

The encoder (NG-GNN or ScaleGMN) sees the per-layer normalised neural graphs of the networks; the decoder
maps the latent to the flat parameters of one (canonical) network in the spec's layout. A saved model is
``{"config": ae.config(), "state_dict": ae.state_dict()}`` and comes back with :meth:`Autoencoder.from_config`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from symzoo.graph.neural_graph import GraphStructure, LayerStats, normalize, to_batch
from symzoo.models.ng_gnn import NGGNN, mlp
from symzoo.models.scalegmn import ScaleGMN
from symzoo.nets.spec import NetSpec

Kind = Literal["ngnn", "scalegmn", "scalegmn_broken"]
KINDS: tuple[str, ...] = ("ngnn", "scalegmn", "scalegmn_broken")
MESSAGE_PASSING: tuple[str, ...] = ("dense", "pyg")


DECODER_OUTPUTS = ("raw", "zoo")


class Decoder(nn.Module):
    """MLP latent d → widths[0] d → widths[1] d → ... → P, SiLU between layers, default initialisation.

    ``output="raw"`` (the reference's): the MLP's output are the flat parameters. ``output="zoo"``: it is
    de-standardised with the zoo's per-layer statistics, ``shift + scale * mlp(z)`` (buffers, (P,)).
    """

    def __init__(
        self,
        spec: NetSpec,
        latent: int,
        widths: tuple[int, ...] = (2, 4),
        output: str = "raw",
        scale: Tensor | None = None,
        shift: Tensor | None = None,
    ) -> None:
        super().__init__()
        if output not in DECODER_OUTPUTS:
            raise ValueError(f"decoder output must be one of {DECODER_OUTPUTS}, not {output!r}")
        self.output = output
        self.net = mlp([latent, *(w * latent for w in widths), spec.num_params])
        if output == "zoo":
            self.register_buffer("scale", torch.ones(spec.num_params) if scale is None else scale.clone().float())
            self.register_buffer("shift", torch.zeros(spec.num_params) if shift is None else shift.clone().float())

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z)
        return self.shift + self.scale * out if self.output == "zoo" else out


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
    message: str = "mlp",
    readout: str = "pool",
    message_passing: str = "dense",
    decoder_widths: tuple[int, ...] | list[int] = (2, 4),
    decoder_output: str = "raw",
    thetas_train: Tensor | None = None,
) -> Autoencoder:
    """An autoencoder for networks of ``spec`` with a ``kind`` encoder (NG-GNN, ScaleGMN or its ablation).

    ``message`` (ScaleGMN: ``bilinear`` or ``mlp``) and ``readout`` (NG-GNN: ``pool`` or ``outputs``) select the
    encoder's variant, ``message_passing`` (``dense`` or ``pyg``) how messages are computed (the same function).
    The decoder maps the encoder's latent through hidden layers of ``decoder_widths`` x latent units to the
    parameters (``decoder_output``: see :class:`Decoder`). ``thetas_train`` (N, P), the training split, fits the
    per-layer statistics of the encoder's input (and of a ``zoo`` decoder's output); without it they are neutral
    (e.g. before loading a ``state_dict``). NG-GNN uses reverse edges (so input nodes receive messages), ScaleGMN
    forward edges only.
    """
    if kind not in KINDS:
        raise ValueError(f"encoder kind must be one of {KINDS}, not {kind!r}")
    if message_passing not in MESSAGE_PASSING:
        raise ValueError(f"message_passing must be one of {MESSAGE_PASSING}, not {message_passing!r}")
    structure = GraphStructure.from_spec(spec, reverse_edges=kind == "ngnn")
    sizes = {"hidden": hidden, "layers": layers, "latent": latent, "dropout": dropout}
    dense = message_passing == "dense"
    if kind == "ngnn":
        encoder: nn.Module = NGGNN(structure, **sizes, readout=readout, dense=dense)
    else:
        encoder = ScaleGMN(structure, **sizes, symmetry_broken=kind == "scalegmn_broken", message=message, dense=dense)
    if thetas_train is None:
        stats, std, mean = LayerStats.identity(structure), None, None
    else:
        stats = LayerStats.fit(structure, thetas_train)
        std, mean = stats.per_parameter(spec)
    decoder = Decoder(spec, encoder.latent, tuple(decoder_widths), decoder_output, scale=std, shift=mean)
    config = {
        "spec": spec.to_dict(),
        "kind": kind,
        **sizes,
        "message": message,
        "readout": readout,
        "message_passing": message_passing,
        "decoder_widths": list(decoder_widths),
        "decoder_output": decoder_output,
    }
    return Autoencoder(encoder, decoder, structure, stats, config)
