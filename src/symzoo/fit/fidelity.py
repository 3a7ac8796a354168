"""Fidelity of reconstructions: does a decoded network compute the function of *its own* original?

A barrier alone can be won by collapse (a decoder that returns one good network for every input interpolates
without a barrier), so every autoencoder number comes with these measures, computed from the networks'
predictive distributions (softmax at temperature 1) on a fixed set of images:

- ``kl``: mean KL(orig_i || recon_i) over networks and images;
- ``agreement``: fraction of (network, image) pairs where the reconstruction's top class is the original's;
- ``ident_recon`` / ``ident_orig``: identifiability top-1. Recon -> orig: is recon_j closer (in KL(orig || recon))
  to its own original than to every other original? Orig -> recon: is orig_i closer to its own reconstruction
  than to every other reconstruction? Ties count fractionally (the expected top-1 under random tie-breaking), so
  a constant decoder scores exactly the chance level ``chance`` = 1 / N in both directions;
- ``rank``: mean normalised rank (0 = own original nearest, 1 = farthest, 0.5 = chance; ties averaged) of the own
  original among all originals, seen from each reconstruction;
- ``diversity_recon`` / ``diversity_orig``: mean pairwise KL between reconstructions / between originals
  (a collapsed decoder has diversity near 0);
- ``orig_acc``, ``recon_acc``, ``acc_gap`` (recon - orig), ``kendall_tau``, ``spearman`` of the accuracies.

Controls (:func:`controls`) are fitted on the training split only and scored the same way: ``medoid`` (the one
train network with the smallest mean KL from the other train networks, on held-out images), ``mean_prediction``
(the mean predictive distribution of the train networks, the best constant in KL), ``nearest_train`` (an oracle
retrieval decoder: for each original the train network nearest to it) and ``identity`` (the original itself).

INR zoos (SIRENs, ``spec.is_inr``) are measured the same way with the images they render in place of predictive
distributions: :func:`log_probs` returns the rendered pixels (N, pixels, 1), the distance is the mean squared
error between two renders instead of the KL (``kl`` is the render MSE(orig, recon)), the labels ``y`` are the
originals' ground-truth images (N, pixels) and "accuracy" is the PSNR (dB) against them (``acc_gap``: PSNR of the
reconstruction minus the original's); ``agreement`` is undefined (NaN). The controls keep their meaning
(``mean_prediction``: the mean image of the train INRs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, rankdata, spearmanr
from torch import Tensor

from symzoo.nets.functional import batched_forward, render
from symzoo.nets.spec import NetSpec

METRICS = (
    "kl",
    "agreement",
    "ident_recon",
    "ident_orig",
    "chance",
    "rank",
    "diversity_recon",
    "diversity_orig",
    "orig_acc",
    "recon_acc",
    "acc_gap",
    "kendall_tau",
    "spearman",
)
CONTROLS = ("identity", "medoid", "mean_prediction", "nearest_train")


@torch.no_grad()
def log_probs(spec: NetSpec, thetas: Tensor, x: Tensor, models_per_pass: int = 64) -> Tensor:
    """log softmax (N, B, classes) at temperature 1 of networks ``thetas`` (N, P) on images ``x`` (B, ...).

    For SIRENs: their renders (N, pixels, 1) at the coordinates ``x`` (pixels, 2).
    """
    if spec.is_inr:
        return render(spec, thetas, x, models_per_pass).unsqueeze(-1)
    parts = [
        F.log_softmax(batched_forward(spec, thetas[s : s + models_per_pass], x).float(), dim=-1)
        for s in range(0, len(thetas), models_per_pass)
    ]
    return torch.cat(parts) if parts else x.new_zeros(0, len(x), spec.num_classes)


def kl_matrix(logp: Tensor, logq: Tensor, rows_per_pass: int = 256, inr: bool = False) -> Tensor:
    """D[i, j] = mean over images of KL(p_i || q_j), for log-probabilities ``logp`` (N, B, C), ``logq`` (M, B, C).

    Computed as entropy minus cross-entropy with one matrix product per group of rows (float64).
    ``inr``: renders instead (N, pixels, 1), and D[i, j] is the mean squared error between render i and j.
    """
    if inr:
        return _mse_matrix(logp, logq)
    if logp.shape[1:] != logq.shape[1:]:
        raise ValueError(f"kl_matrix: shapes {tuple(logp.shape)} and {tuple(logq.shape)} differ after the first axis")
    n_images = logp.shape[1]
    q = logq.flatten(1).double()
    rows = []
    for s in range(0, len(logp), rows_per_pass):
        lp = logp[s : s + rows_per_pass].flatten(1).double()
        p = lp.exp()
        rows.append(((p * lp).sum(1, keepdim=True) - p @ q.T) / n_images)
    return torch.cat(rows).clamp_min(0.0) if rows else logp.new_zeros(0, len(logq), dtype=torch.float64)


def _mse_matrix(p: Tensor, q: Tensor) -> Tensor:
    p, q = p.flatten(1).double(), q.flatten(1).double()
    d = p.square().sum(1, keepdim=True) + q.square().sum(1) - 2 * p @ q.T
    return (d / max(p.shape[1], 1)).clamp_min(0.0)


def paired_kl(logp: Tensor, logq: Tensor, inr: bool = False) -> Tensor:
    """KL(p_i || q_i) per network (N,), mean over images; both (N, B, C) (``inr``: the render MSE)."""
    if inr:
        return (logp - logq).double().square().flatten(1).mean(1)
    return (logp.exp() * (logp - logq)).sum(-1).mean(-1).double().clamp_min(0.0)


def medoid(logp_train: Tensor, inr: bool = False) -> int:
    """Index of the network with the smallest mean KL(other || it) from the other networks (N >= 2)."""
    if len(logp_train) < 2:
        raise ValueError(f"medoid: need at least 2 networks, got {len(logp_train)}")
    d = kl_matrix(logp_train, logp_train, inr=inr)
    return int((d.sum(0) / (len(d) - 1)).argmin())


def mean_prediction(logp_train: Tensor, inr: bool = False) -> Tensor:
    """log of the mean predictive distribution over networks (B, C): the best constant predictor in KL
    (``inr``: the mean render, the best constant in squared error)."""
    if inr:
        return logp_train.mean(0)
    return torch.logsumexp(logp_train, dim=0) - math.log(len(logp_train))


TIE = 1e-9
"""Relative tolerance under which two KL values count as tied (float64 round-off is ~1e-16)."""


def _ties(d: Tensor) -> Tensor:
    """``d`` rounded so that values within :data:`TIE` (relative to the largest) become exactly equal."""
    unit = TIE * max(float(d.abs().max()), 1e-30) if d.numel() else 1.0
    return torch.round(d / unit)


def _top1(d: Tensor) -> float:
    """Mean over columns j of [d[j, j] is the column's minimum] / (number of entries at that minimum)."""
    d = _ties(d)
    lowest = d.min(0).values
    hit = d.diagonal() == lowest
    return float((hit / (d == lowest).sum(0)).mean())


def _rank(d: Tensor) -> float:
    """Mean over columns j of the normalised rank of d[j, j] within column j (ties averaged)."""
    n = len(d)
    if n < 2:
        return math.nan
    ranks = rankdata(_ties(d).cpu().numpy(), axis=0, method="average")
    return float(((np.diag(ranks) - 1) / (n - 1)).mean())


def _diversity(d: Tensor) -> float:
    n = len(d)
    return float((d.sum() - d.diagonal().sum()) / (n * (n - 1))) if n > 1 else math.nan


def _correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if len(a) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input: scipy warns and returns NaN
        return float(kendalltau(a, b).statistic), float(spearmanr(a, b).statistic)


def accuracy(logp: Tensor, y: Tensor) -> np.ndarray:
    """Accuracy (N,) of each network's top class against labels ``y`` (B,); for renders (N, pixels, 1) against
    ground-truth images ``y`` (N, pixels), the PSNR (dB)."""
    if y.is_floating_point():
        error = (logp[..., 0] - y).double().square().mean(-1).clamp_min(1e-12)
        return (-10 * torch.log10(error)).cpu().numpy()
    return (logp.argmax(-1) == y).double().mean(-1).cpu().numpy()


def fidelity(logp_orig: Tensor, logp_recon: Tensor, y: Tensor) -> dict[str, float]:
    """All measures of the module docstring for originals vs reconstructions, both (N, B, C), labels ``y`` (B,).

    ``logp_recon`` may also be (1, B, C) or (B, C): one constant prediction for every network. Float ``y``
    (N, pixels): renders of INRs against their ground-truth images (see the module docstring).
    """
    inr = y.is_floating_point()
    if logp_recon.ndim == 2:
        logp_recon = logp_recon.unsqueeze(0)
    logp_recon = logp_recon.expand_as(logp_orig)
    n = len(logp_orig)
    d = kl_matrix(logp_orig, logp_recon, inr=inr)  # d[i, j] = KL(orig_i || recon_j)
    orig_acc, recon_acc = accuracy(logp_orig, y), accuracy(logp_recon, y)
    tau, rho = _correlations(orig_acc, recon_acc)
    return {
        "n": n,
        "kl": float(d.diagonal().mean()),
        "agreement": math.nan if inr else float((logp_orig.argmax(-1) == logp_recon.argmax(-1)).double().mean()),
        "ident_recon": _top1(d),
        "ident_orig": _top1(d.T),
        "chance": 1.0 / n,
        "rank": _rank(d),
        "diversity_recon": _diversity(kl_matrix(logp_recon, logp_recon, inr=inr)),
        "diversity_orig": _diversity(kl_matrix(logp_orig, logp_orig, inr=inr)),
        "orig_acc": float(orig_acc.mean()),
        "recon_acc": float(recon_acc.mean()),
        "acc_gap": float((recon_acc - orig_acc).mean()),
        "kendall_tau": tau,
        "spearman": rho,
    }


def controls(
    logp_orig: Tensor, logp_train: Tensor, logp_medoid: Tensor, y: Tensor, exclude: Tensor | None = None
) -> dict[str, dict[str, float]]:
    """The fidelity of every control (see the module docstring) against originals ``logp_orig``.

    ``logp_train`` (M, B, C): the train networks on the same images; ``logp_medoid`` (B, C): the train medoid
    (chosen on other images, :func:`medoid`); ``exclude`` (N, M) bool: train networks the nearest-train oracle
    may not return for an original (itself, when the originals are train networks). Float ``y``: INRs.
    """
    inr = y.is_floating_point()
    d = kl_matrix(logp_orig, logp_train, inr=inr)
    if exclude is not None:
        d = d.masked_fill(exclude, math.inf)
    nearest = d.argmin(1)
    return {
        "identity": fidelity(logp_orig, logp_orig, y),
        "medoid": fidelity(logp_orig, logp_medoid, y),
        "mean_prediction": fidelity(logp_orig, mean_prediction(logp_train, inr), y),
        "nearest_train": fidelity(logp_orig, logp_train[nearest], y),
    }
