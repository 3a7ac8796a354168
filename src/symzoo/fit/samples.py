"""Judging generated networks: quality, novelty (Zeng et al., "Generalization or Memorization?"), diversity,
ensembles — every measure from the networks' predictions on one image set.

- quality: each network's accuracy and cross-entropy;
- novelty: for each network, the highest prediction agreement (fraction of images with the same top class) and the
  lowest KL(network ‖ train network) to any train network (:func:`nearest_train`). A copy of a train network scores
  agreement 1 and KL 0; a held-out test network scores what a fresh training run does;
- diversity: the mean pairwise Jensen–Shannon divergence of the networks' predictions (:func:`diversity`);
- ensembles: Bayesian model averaging of K networks' predictive distributions, its accuracy, NLL and expected
  calibration error (:func:`ensembles`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from symzoo.fit.fidelity import kl_matrix, log_probs
from symzoo.nets.spec import NetSpec

ECE_BINS = 15


def quality(logp: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Accuracy and cross-entropy (each (N,)) of networks with log-probabilities ``logp`` (N, B, C) on labels y."""
    acc = (logp.argmax(-1) == y).double().mean(1)
    ce = -logp.gather(-1, y.expand(len(logp), -1).unsqueeze(-1)).squeeze(-1).double().mean(1)
    return acc, ce


def agreement_matrix(logp: Tensor, logq: Tensor) -> Tensor:
    """A[i, j]: the fraction of images on which network i of ``logp`` and j of ``logq`` predict the same class."""
    c = logp.shape[-1]
    a = F.one_hot(logp.argmax(-1), c).flatten(1).double()
    b = F.one_hot(logq.argmax(-1), c).flatten(1).double()
    return a @ b.T / logp.shape[1]


def nearest_train(logp: Tensor, logp_train: Tensor, rows: int = 256) -> tuple[Tensor, Tensor]:
    """Per network (N,): the highest agreement with any train network and the lowest KL(network ‖ train network)."""
    best_agree, best_kl = [], []
    for s in range(0, len(logp), rows):
        part = logp[s : s + rows]
        best_agree.append(agreement_matrix(part, logp_train).amax(1))
        best_kl.append(kl_matrix(part, logp_train).amin(1))
    empty = torch.zeros(0, dtype=torch.float64)
    return (torch.cat(best_agree), torch.cat(best_kl)) if best_agree else (empty, empty)


def diversity(logp: Tensor, max_networks: int = 200, seed: int = 0) -> float:
    """The mean pairwise Jensen–Shannon divergence (nats, mean over images) of at most ``max_networks`` networks."""
    if len(logp) > max_networks:
        logp = logp[torch.randperm(len(logp), generator=torch.Generator().manual_seed(seed))[:max_networks]]
    if len(logp) < 2:
        return float("nan")
    p = logp.double().exp()
    total, pairs = 0.0, 0
    for i in range(len(p) - 1):
        m = 0.5 * (p[i] + p[i + 1 :])
        log_m = m.clamp_min(1e-300).log()
        js = 0.5 * (p[i] * (logp[i].double() - log_m)).sum(-1) + 0.5 * (
            p[i + 1 :] * (logp[i + 1 :].double() - log_m)
        ).sum(-1)
        total += float(js.mean(1).sum())
        pairs += len(p) - 1 - i
    return total / pairs


def ece(probs: Tensor, y: Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error of predictive distributions ``probs`` (B, C): the confidence-binned gap between
    accuracy and confidence, weighted by the bins' sizes."""
    confidence, predicted = probs.max(-1)
    correct = (predicted == y).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=probs.dtype)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += float(inside.double().mean() * (correct[inside].mean() - confidence[inside].double().mean()).abs())
    return total


def ensembles(logp: Tensor, y: Tensor, sizes: Sequence[int], repeats: int, seed: int) -> pl.DataFrame:
    """Bayesian model averaging of K networks drawn at random (``repeats`` draws per K, without replacement):
    per K the mean accuracy, NLL and ECE of the averaged predictive distribution."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    p = logp.double().exp()
    for k in sizes:
        if k > len(p):
            continue
        acc, nll, cal = [], [], []
        for _ in range(repeats):
            mix = p[torch.randperm(len(p), generator=g)[:k]].mean(0)
            acc.append(float((mix.argmax(-1) == y).double().mean()))
            nll.append(float(-mix.gather(-1, y.unsqueeze(-1)).clamp_min(1e-300).log().mean()))
            cal.append(ece(mix, y))
        rows.append({"k": k, "accuracy": float(np.mean(acc)), "nll": float(np.mean(nll)), "ece": float(np.mean(cal))})
    return pl.DataFrame(rows, schema={"k": pl.Int64, "accuracy": pl.Float64, "nll": pl.Float64, "ece": pl.Float64})


def judge(
    spec: NetSpec, thetas: Tensor, logp_train: Tensor, x: Tensor, y: Tensor, min_accuracy: float
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Per network (accuracy, CE, nearest-train agreement and KL) and the summary of these networks on images
    ``x`` (labels ``y``): quality (mean, std, max, the fraction at or above ``min_accuracy``), novelty (medians),
    diversity."""
    logp = log_probs(spec, thetas, x)
    acc, ce = quality(logp, y)
    agree, kl = nearest_train(logp, logp_train)
    frame = pl.DataFrame(
        {"accuracy": acc.numpy(), "ce": ce.numpy(), "nearest_agreement": agree.numpy(), "nearest_kl": kl.numpy()}
    )
    finite = frame.filter(pl.col("ce").is_finite())
    summary = {
        "networks": len(frame),
        "accuracy": float(frame["accuracy"].mean()),
        "accuracy_std": float(frame["accuracy"].std()) if len(frame) > 1 else 0.0,
        "accuracy_max": float(frame["accuracy"].max()),
        "at_least_min_accuracy": float((frame["accuracy"] >= min_accuracy).mean()),
        "ce": float(finite["ce"].mean()) if len(finite) else math.inf,
        "nearest_agreement_median": float(frame["nearest_agreement"].median()),
        "nearest_kl_median": float(frame["nearest_kl"].median()),
        "diversity": diversity(logp),
    }
    return frame, summary
