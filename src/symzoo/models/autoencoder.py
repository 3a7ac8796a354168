"""Weight-space autoencoder: graph metanetwork encoder → invariant latent → MLP decoder → flat parameters.

The encoder (NG-GNN or ScaleGMN) sees the per-layer normalised neural graphs of the networks; the decoder
maps the latent to the flat parameters of one (canonical) network in the spec's layout. Everything that builds
or reads a trained model lives here: :class:`Architecture` (the settings that define a model),
:func:`build_autoencoder`, :func:`save_autoencoder` / :func:`load_autoencoder` (``model.pt``) and
:func:`reconstruct`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from symzoo.graph.neural_graph import GraphStructure, to_batch
from symzoo.graph.stats import LayerStats, normalize
from symzoo.models.layers import eval_mode, mlp
from symzoo.models.ng_gnn import NGGNN
from symzoo.models.saved import load_model, save_model
from symzoo.models.scalegmn import ScaleGMN
from symzoo.nets.spec import NetSpec

EncoderKind = Literal["ngnn", "scalegmn", "scalegmn_broken"]
KINDS: tuple[str, ...] = ("ngnn", "scalegmn", "scalegmn_broken")
MESSAGE_PASSING: tuple[str, ...] = ("dense", "pyg")


@dataclass(frozen=True)
class Architecture:
    """What defines an autoencoder besides the networks it reads (the config's encoder keys of that name).

    ``kind``: ``ngnn``, ``scalegmn`` or ``scalegmn_broken`` (the ablation); ``hidden``, ``layers``, ``latent``,
    ``dropout``; ``message`` (ScaleGMN: ``bilinear`` or ``mlp``) and ``readout`` (NG-GNN: ``pool`` or
    ``outputs``) select the encoder's variant, ``message_passing`` (``dense`` or ``pyg``) how messages are computed
    (the same function); the decoder has hidden layers of ``decoder_widths`` x latent units and emits
    ``decoder_output`` parameters (:class:`Decoder`). The defaults live in the config schema only.
    """

    kind: str
    hidden: int
    layers: int
    latent: int
    dropout: float
    message: str
    readout: str
    message_passing: str
    decoder_widths: tuple[int, ...]
    decoder_output: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_widths", tuple(self.decoder_widths))
        if self.kind not in KINDS:
            raise ValueError(f"encoder kind must be one of {KINDS}, not {self.kind!r}")
        if self.message_passing not in MESSAGE_PASSING:
            raise ValueError(f"message_passing must be one of {MESSAGE_PASSING}, not {self.message_passing!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Architecture:
        """The architecture keys of a (validated) encoder config entry; other keys are ignored."""
        return cls(**{f.name: options[f.name] for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self) | {"decoder_widths": list(self.decoder_widths)}


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


class GraphModel(nn.Module):
    """A graph metanetwork over networks of one spec: ``encode(thetas) -> (B, latent)``.

    Networks become neural graphs by indexing, are normalised per layer (``stats``) and encoded; the autoencoder
    and the generalization predictors (:mod:`symzoo.models.predictors`) put a decoder or a head on top.
    """

    def __init__(self, encoder: nn.Module, structure: GraphStructure, stats: LayerStats) -> None:
        super().__init__()
        self.encoder, self.stats, self.structure = encoder, stats, structure

    @property
    def spec(self) -> NetSpec:
        return self.structure.spec

    def encode(self, thetas: Tensor) -> Tensor:
        """Latents (B, latent) of networks ``thetas`` (B, P): graph by indexing, per-layer normalisation, encoder."""
        batch = normalize(to_batch(self.structure, thetas), self.stats, center=self.encoder.center)
        return self.encoder(batch)


class Autoencoder(GraphModel):
    """``encode(thetas) -> (B, latent)``, ``forward(thetas) -> reconstructed thetas (B, P)``."""

    def __init__(
        self, encoder: nn.Module, decoder: Decoder, structure: GraphStructure, stats: LayerStats, arch: Architecture
    ) -> None:
        super().__init__(encoder, structure, stats)
        self.decoder, self.arch = decoder, arch

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, thetas: Tensor) -> Tensor:
        return self.decode(self.encode(thetas))

    def config(self) -> dict[str, Any]:
        """JSON-ready description (spec and architecture) that :meth:`from_config` rebuilds this model from."""
        return {"spec": self.spec.to_dict(), **self.arch.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any], state_dict: dict[str, Tensor] | None = None) -> Autoencoder:
        """Rebuild from :meth:`config` (statistics and weights then come from ``state_dict``, if given)."""
        arch = Architecture(**{k: v for k, v in config.items() if k != "spec"})
        model = build_autoencoder(NetSpec.from_dict(config["spec"]), arch)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        return model


def build_autoencoder(spec: NetSpec, arch: Architecture, thetas_train: Tensor | None = None) -> Autoencoder:
    """An autoencoder for networks of ``spec`` with the architecture ``arch``.

    ``thetas_train`` (N, P), the training split, fits the per-layer statistics of the encoder's input (and of a
    ``zoo`` decoder's output); without it they are neutral (e.g. before loading a ``state_dict``). NG-GNN uses
    reverse edges (so input nodes receive messages), ScaleGMN forward edges only.
    """
    structure, encoder, stats = build_encoder(spec, arch, thetas_train)
    std, mean = stats.per_parameter(spec) if thetas_train is not None else (None, None)
    decoder = Decoder(spec, encoder.latent, arch.decoder_widths, arch.decoder_output, scale=std, shift=mean)
    return Autoencoder(encoder, decoder, structure, stats, arch)


def build_encoder(
    spec: NetSpec, arch: Architecture, thetas_train: Tensor | None = None
) -> tuple[GraphStructure, nn.Module, LayerStats]:
    """The neural-graph structure, the encoder of ``arch`` (its decoder keys unused) and the per-layer statistics
    fitted on ``thetas_train`` (neutral without it)."""
    structure = GraphStructure.from_spec(spec, reverse_edges=arch.kind == "ngnn")
    sizes = {"hidden": arch.hidden, "layers": arch.layers, "latent": arch.latent, "dropout": arch.dropout}
    dense = arch.message_passing == "dense"
    if arch.kind == "ngnn":
        encoder: nn.Module = NGGNN(structure, **sizes, readout=arch.readout, dense=dense)
    else:
        broken = arch.kind == "scalegmn_broken"
        encoder = ScaleGMN(structure, **sizes, symmetry_broken=broken, message=arch.message, dense=dense)
    stats = LayerStats.identity(structure) if thetas_train is None else LayerStats.fit(structure, thetas_train)
    return structure, encoder, stats


def save_autoencoder(path: str | Path, ae: Autoencoder, state_dict: dict[str, Tensor], **extra: Any) -> None:
    """Write ``model.pt`` (:func:`symzoo.models.saved.save_model`; the caller writes atomically)."""
    save_model(path, ae, state_dict, **extra)


def load_autoencoder(path: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The autoencoder saved in ``path`` (a ``model.pt``), in eval mode, on ``device``."""
    return load_model(path, Autoencoder, device)


def _batched(ae: Autoencoder, step, inputs: Tensor, width: int, batch_size: int) -> Tensor:
    """``step`` over ``inputs`` ``batch_size`` rows at a time, in eval mode and without gradients, on the model's
    device; the result (N, width) comes back on ``inputs``' device."""
    with torch.no_grad(), eval_mode(ae) as device:
        parts = [step(t.to(device)).to(inputs.device) for t in inputs.split(batch_size)]
    return torch.cat(parts) if parts else inputs.new_zeros(0, width)


def _check_networks(ae: Autoencoder, thetas: Tensor, what: str) -> None:
    if thetas.ndim != 2 or thetas.shape[1] != ae.spec.num_params:
        raise ValueError(f"{what}: expected thetas of shape (N, {ae.spec.num_params}), got {tuple(thetas.shape)}")


def latents(ae: Autoencoder, thetas: Tensor, batch_size: int = 256) -> Tensor:
    """Latents (N, latent) of networks ``thetas`` (N, P) (eval mode, no gradients; see :func:`reconstruct`)."""
    _check_networks(ae, thetas, "latents")
    return _batched(ae, ae.encode, thetas, ae.encoder.latent, batch_size)


def decode_latents(ae: Autoencoder, z: Tensor, batch_size: int = 256) -> Tensor:
    """Networks (N, P) decoded from latents ``z`` (N, latent) (eval mode, no gradients)."""
    return _batched(ae, ae.decode, z, ae.spec.num_params, batch_size)


def reconstruct(ae: Autoencoder, thetas: Tensor, batch_size: int = 256) -> Tensor:
    """Reconstructions (N, P) of networks ``thetas`` (N, P), ``batch_size`` at a time, without gradients.

    Runs in eval mode (the model's mode is restored afterwards); batches go to the model's device and the
    result comes back on ``thetas``' device.
    """
    _check_networks(ae, thetas, "reconstruct")
    return _batched(ae, ae, thetas, ae.spec.num_params, batch_size)
