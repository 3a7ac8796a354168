"""Training generalization predictors (ScaleGMN and NG-GNN protocol) and ridge probes on frozen latents.

Protocol of the ScaleGMN and Neural Graphs code: prediction ``sigmoid(model(theta))``, MSE against the
network's test accuracy, AdamW with a linear warm-up then constant learning rate, gradient-norm clipping, the
epoch with the best validation Kendall tau kept (early stopping after ``patience`` epochs without a better one).
Reported: Kendall tau (scipy), R² (scikit-learn) and L1 on the test networks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from symzoo.fit.train import OptimSettings, Trained, seeded, train
from symzoo.metrics import regression_metrics
from symzoo.models.autoencoder import Architecture
from symzoo.models.layers import eval_mode
from symzoo.models.predictors import GRAPH_KINDS, build_predictor
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)

MEASURES = ("tau", "r2", "l1")
"""Validation measures recorded per epoch (as ``val_<name>``)."""
SELECT = {"tau": lambda m: (-m["tau"] if math.isfinite(m["tau"]) else math.inf,)}
"""Selection measures (lower is better): the highest validation tau (a NaN tau, a constant prediction, is worst)."""


@dataclass(frozen=True)
class PredictSettings:
    """A predictor entry of the config (``predict.models.<name>``; the schema holds the defaults) and a seed:
    the kind, its width (``hidden`` x ``layers``, ``dropout``), a graph kind's encoder
    :class:`~symzoo.models.autoencoder.Architecture` and the :class:`~symzoo.fit.train.OptimSettings`."""

    kind: str
    hidden: int
    layers: int
    dropout: float
    encoder: Architecture | None
    optim: OptimSettings
    seed: int

    def __post_init__(self) -> None:
        if self.optim.select not in SELECT:
            raise ValueError(f"predictor settings: select must be one of {tuple(SELECT)}, not {self.optim.select!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], seed: int) -> PredictSettings:
        encoder = None
        if options["kind"] in GRAPH_KINDS:  # the encoder of an autoencoder without its decoder
            encoder = Architecture.from_options(options | {"decoder_widths": (1,), "decoder_output": "raw"})
        keys = ("kind", "hidden", "layers", "dropout")
        return cls(
            **{k: options[k] for k in keys}, encoder=encoder, optim=OptimSettings.from_options(options), seed=seed
        )


@torch.no_grad()
def predict(model: nn.Module, thetas: Tensor, batch_size: int = 256) -> np.ndarray:
    """Predicted accuracies (N,) of networks ``thetas``, in eval mode, on the model's device."""
    with eval_mode(model) as device:
        inputs = model.prepare(thetas.to(device))
        out = [torch.sigmoid(model(part)).cpu() for part in inputs.split(batch_size)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def fit_predictor(
    spec: NetSpec,
    settings: PredictSettings,
    train_set: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    device: torch.device,
    progress: bool = True,
    resume: Mapping[str, Any] | None = None,
    save_state: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> Trained:
    """Train a predictor on (parameters, accuracies) ``train_set`` with the one training loop: the model of the
    epoch with the best validation tau, and the history (epoch, step, lr, train MSE, val tau / R² / L1)."""
    thetas, y = (t.to(device) for t in train_set)
    with seeded(settings.seed, device):
        model = build_predictor(
            spec, settings.kind, thetas.cpu(), settings.encoder, settings.hidden, settings.layers, settings.dropout
        ).to(device)
        inputs = model.prepare(thetas)  # once: e.g. StatNN's statistics
        return train(
            model,
            lambda batch, _: F.mse_loss(torch.sigmoid(model(inputs[batch])), y[batch]),
            lambda m: regression_metrics(predict(m, val[0]), val[1].numpy()),
            SELECT[settings.optim.select],
            len(thetas),
            settings.optim,
            settings.seed,
            measures=MEASURES,
            train_column="train_mse",
            desc=f"predictor {settings.kind}",
            resume=resume,
            save_state=save_state,
            on_epoch=on_epoch,
            progress=progress,
        )


def ridge_probe(
    z_train: np.ndarray, y_train: np.ndarray, z_val: np.ndarray, y_val: np.ndarray, alphas=(0.1, 1.0, 10.0, 100.0)
):
    """A standardised ridge regression on frozen latents, its regularisation chosen by validation tau."""
    best = None
    for alpha in alphas:
        probe = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(z_train, y_train)
        tau = regression_metrics(probe.predict(z_val), y_val)["tau"]
        if best is None or (math.isfinite(tau) and tau > best[0]):
            best = (tau, probe, alpha)
    log.info("ridge probe: alpha %s, val tau %.4f", best[2], best[0])
    return best[1]
