"""Training generalization predictors (ScaleGMN and NG-GNN protocol) and ridge probes on frozen latents.

Protocol of the ScaleGMN and Neural Graphs code: prediction ``sigmoid(model(theta))``, MSE against the
network's test accuracy, AdamW with a linear warm-up then constant learning rate, gradient-norm clipping, the
epoch with the best validation Kendall tau kept (early stopping after ``patience`` epochs without a better one).
Reported: Kendall tau (scipy), R² (scikit-learn) and L1 on the test networks.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn
from tqdm import tqdm

from symzoo.fit.optim import adamw_with_warmup
from symzoo.models.autoencoder import Architecture
from symzoo.models.predictors import GRAPH_KINDS, build_predictor
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictSettings:
    """A predictor entry of the config (``predict.models.<name>``; the schema holds the defaults) and a seed."""

    kind: str
    hidden: int
    layers: int
    latent: int
    dropout: float
    message: str
    readout: str
    message_passing: str
    lr: float
    weight_decay: float
    amsgrad: bool
    warmup_steps: int
    clip: float
    batch_size: int
    epochs: int
    patience: int | None
    seed: int

    @classmethod
    def from_options(cls, options: Mapping[str, Any], seed: int) -> PredictSettings:
        return cls(**{f.name: options[f.name] for f in fields(cls) if f.name != "seed"}, seed=seed)

    def arch(self) -> Architecture | None:
        """The encoder architecture of a graph predictor (its decoder keys unused), None for the others."""
        if self.kind not in GRAPH_KINDS:
            return None
        keys = ("kind", "hidden", "layers", "latent", "dropout", "message", "readout", "message_passing")
        return Architecture(**{k: getattr(self, k) for k in keys}, decoder_widths=(1,), decoder_output="raw")


def regression_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Kendall tau, R² and mean absolute error of predicted accuracies."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant prediction: scipy warns and returns NaN
        tau = float(kendalltau(predicted, true).statistic) if len(true) > 1 else math.nan
    r2 = float(r2_score(true, predicted)) if len(true) > 1 else math.nan
    return {"tau": tau, "r2": r2, "l1": float(np.abs(predicted - true).mean())}


@torch.no_grad()
def predict(model: nn.Module, thetas: Tensor, batch_size: int = 256) -> np.ndarray:
    """Predicted accuracies (N,) of networks ``thetas``, in eval mode, on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        inputs = model.prepare(thetas.to(device))
        out = [torch.sigmoid(model(inputs[s : s + batch_size])).cpu() for s in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def fit_predictor(
    spec: NetSpec,
    settings: PredictSettings,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    device: torch.device,
    progress: bool = True,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train a predictor on (parameters, accuracies) ``train``; returns the model of the epoch with the best
    validation tau and the history (epoch, step, train MSE, validation tau / R² / L1)."""
    thetas, y = (t.to(device) for t in train)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        model = build_predictor(
            spec, settings.kind, thetas.cpu(), settings.arch(), settings.hidden, settings.layers, settings.dropout
        ).to(device)
        opt, sched = adamw_with_warmup(
            model.parameters(),
            settings.lr,
            settings.weight_decay,
            settings.amsgrad,
            settings.warmup_steps,
            settings.epochs * -(-len(thetas) // settings.batch_size),
        )
        sampler = torch.Generator().manual_seed(settings.seed)
        inputs = model.prepare(thetas)  # once: e.g. StatNN's statistics
        history, best, step = [], (-math.inf, None, 0), 0
        for epoch in tqdm(
            range(1, settings.epochs + 1), desc=f"predictor {settings.kind}", disable=None if progress else True
        ):
            model.train()
            total = 0.0
            for batch in torch.randperm(len(thetas), generator=sampler).split(settings.batch_size):
                batch = batch.to(device)
                loss = F.mse_loss(torch.sigmoid(model(inputs[batch])), y[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
                opt.step()
                sched.step()
                step += 1
                total += loss.item() * len(batch)
            metrics = regression_metrics(predict(model, val[0]), val[1].numpy())
            history.append(
                {"epoch": epoch, "step": step, "train_mse": total / len(thetas)}
                | {f"val_{k}": v for k, v in metrics.items()}
            )
            log.info("epoch %d: train MSE %.5f, val tau %.4f", epoch, total / len(thetas), metrics["tau"])
            tau = metrics["tau"] if math.isfinite(metrics["tau"]) else -math.inf
            if best[1] is None or tau > best[0]:
                best = (tau, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
            elif settings.patience is not None and epoch - best[2] >= settings.patience:
                break
        model.load_state_dict(best[1])
    return model.eval(), history


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
