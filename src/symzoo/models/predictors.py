"""Generalization predictors: a network's test accuracy from its weights (the field's standard benchmark).

Every predictor maps parameters (B, P) to a logit (B,) in two steps, ``forward(prepare(thetas))``: ``prepare``
computes what the model reads from the parameters (the parameters themselves, or StatNN's statistics: computed
once per training set, not once per step); ``sigmoid(logit)`` predicts the accuracy in [0, 1].

- :class:`GraphPredictor`: an NG-GNN or ScaleGMN encoder (the autoencoders' own classes and layers, built by
  :func:`~symzoo.models.autoencoder.build_encoder`) with a linear head on its invariant latent;
- :class:`StatNN` (Unterthiner et al. 2020): per layer, for the weights and the biases separately, the mean,
  variance and 0 / 0.25 / 0.5 / 0.75 / 1 quantiles (:func:`statnn_features`, 14 features a layer) → MLP;
- :class:`FlatMLP`: the standardised flat parameter vector → MLP (not invariant to any symmetry: the baseline
  the invariance check is about).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symzoo.models.autoencoder import Architecture, GraphModel, build_encoder
from symzoo.models.layers import mlp
from symzoo.nets.spec import NetSpec

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
STATS_PER_TENSOR = 2 + len(QUANTILES)


def statnn_features(spec: NetSpec, thetas: Tensor) -> Tensor:
    """(N, 14 L) features: for each layer, weights then biases: mean, variance (unbiased), the QUANTILES."""
    parts = []
    for layer in range(spec.num_layers):
        for name in ("weight", "bias"):
            slot = spec.tensor(layer, name)
            values = thetas[:, slot.offset : slot.stop]
            q = torch.quantile(values, torch.tensor(QUANTILES, dtype=values.dtype, device=values.device), dim=1).T
            parts += [values.mean(1, keepdim=True), values.var(1, keepdim=True), q]
    return torch.cat(parts, dim=1)


class _Standardized(nn.Module):
    """Features standardised with the training set's mean and std (buffers), then an MLP to one logit."""

    def __init__(self, features: Tensor, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        std = features.std(0)
        self.register_buffer("mean", features.mean(0))
        self.register_buffer("std", torch.where(std > 1e-8, std, torch.ones_like(std)))
        self.net = mlp([features.shape[1], *[hidden] * layers, 1], dropout)

    def prepare(self, thetas: Tensor) -> Tensor:
        return thetas

    def forward(self, features: Tensor) -> Tensor:
        return self.net((features - self.mean) / self.std).squeeze(-1)


class StatNN(_Standardized):
    """Unterthiner et al.'s predictor on :func:`statnn_features` (invariant to hidden-unit permutations)."""

    def __init__(self, spec: NetSpec, thetas_train: Tensor, hidden: int, layers: int, dropout: float) -> None:
        super().__init__(statnn_features(spec, thetas_train), hidden, layers, dropout)
        self.spec = spec

    def prepare(self, thetas: Tensor) -> Tensor:
        return statnn_features(self.spec, thetas)


class FlatMLP(_Standardized):
    """An MLP on the flat parameters (standardised per parameter): no symmetry at all."""


class GraphPredictor(GraphModel):
    """A graph metanetwork encoder with a linear head on its latent."""

    def __init__(self, spec: NetSpec, arch: Architecture, thetas_train: Tensor) -> None:
        structure, encoder, stats = build_encoder(spec, arch, thetas_train)
        super().__init__(encoder, structure, stats)
        self.head = nn.Linear(encoder.latent, 1)

    def prepare(self, thetas: Tensor) -> Tensor:
        return thetas

    def forward(self, thetas: Tensor) -> Tensor:
        return self.head(self.encode(thetas)).squeeze(-1)


GRAPH_KINDS = ("scalegmn", "scalegmn_broken", "ngnn")
KINDS = (*GRAPH_KINDS, "statnn", "flat_mlp")


def build_predictor(
    spec: NetSpec, kind: str, thetas_train: Tensor, arch: Architecture | None, hidden: int, layers: int, dropout: float
) -> nn.Module:
    """The predictor ``kind``; graph kinds take their encoder's ``arch``, the others ``hidden`` x ``layers``."""
    if kind in GRAPH_KINDS:
        if arch is None:
            raise ValueError(f"predictor {kind!r} needs an encoder architecture")
        return GraphPredictor(spec, arch, thetas_train)
    if kind == "statnn":
        return StatNN(spec, thetas_train, hidden, layers, dropout)
    if kind == "flat_mlp":
        return FlatMLP(thetas_train, hidden, layers, dropout)
    raise ValueError(f"predictor kind must be one of {KINDS}, not {kind!r}")
