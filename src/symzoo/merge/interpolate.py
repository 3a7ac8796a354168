"""Pairwise linear interpolation: pairs of networks, (1 - alpha) theta_A + alpha theta_B, evaluated in bulk.

Every pair x alpha of a method is one network of a single batched (vmapped) evaluation through the shared
functional forward (:func:`symzoo.nets.functional.evaluate`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch

from symzoo.nets.functional import evaluate
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)


def top_test_networks(models: pl.DataFrame, top: int) -> np.ndarray:
    """Row ids of the ``top`` kept test-split networks with the highest test accuracy (ties by id)."""
    return (
        models.filter(pl.col("kept") & (pl.col("split") == "test"))
        .sort(["test_accuracy", "model_id"], descending=[True, False])
        .head(top)["model_id"]
        .to_numpy()
    )


def select_pairs(models: pl.DataFrame, n_pairs: int, top: int, seed: int) -> pl.DataFrame:
    """``n_pairs`` disjoint pairs drawn (seeded) from the ``top`` kept test-split networks by test accuracy.

    Returns pair_id, model_a, model_b (row indices of the zoo). With fewer than 2 n_pairs candidates it takes
    as many pairs as there are (logged); with fewer than two it is an error.
    """
    candidates = top_test_networks(models, top)
    n = min(n_pairs, len(candidates) // 2)
    if n == 0:
        raise ValueError(f"need at least 2 kept test-split networks to pair, found {len(candidates)}")
    if n < n_pairs:
        log.warning("only %d test networks: %d disjoint pairs instead of %d", len(candidates), n, n_pairs)
    chosen = np.random.default_rng(seed).choice(candidates, size=2 * n, replace=False)
    return pl.DataFrame(
        {"pair_id": np.arange(n), "model_a": chosen[0::2], "model_b": chosen[1::2]},
        schema={"pair_id": pl.Int64, "model_a": pl.Int64, "model_b": pl.Int64},
    )


def alphas(n: int) -> torch.Tensor:
    """``n`` evenly spaced interpolation weights from 0 to 1 (both ends included)."""
    return torch.linspace(0.0, 1.0, n, dtype=torch.float64)


def interpolate(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """(1 - alpha) a + alpha b for pairs a, b (n, P) and weights alpha (K,): (n, K, P)."""
    alpha = alpha.to(a.device, a.dtype)[None, :, None]
    return (1 - alpha) * a[:, None] + alpha * b[:, None]


def curves(
    spec: NetSpec,
    a: torch.Tensor,
    b: torch.Tensor,
    alpha: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    models_per_pass: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy (n, K) along the segments from a to b, on images x with labels y."""
    path = interpolate(a, b, alpha)
    n, k = path.shape[:2]
    loss, acc = evaluate(spec, path.reshape(n * k, -1), x, y, models_per_pass=models_per_pass)
    return loss.view(n, k), acc.view(n, k)


def curves_frame(
    pairs: pl.DataFrame, alpha: torch.Tensor, loss: torch.Tensor, acc: torch.Tensor, split: str
) -> pl.DataFrame:
    """The curves table: one row per pair x alpha (pair_id, model_a, model_b, alpha, split, loss, accuracy)."""
    n, k = loss.shape
    return pl.DataFrame(
        {
            "pair_id": np.repeat(pairs["pair_id"].to_numpy(), k),
            "model_a": np.repeat(pairs["model_a"].to_numpy(), k),
            "model_b": np.repeat(pairs["model_b"].to_numpy(), k),
            "alpha": np.tile(alpha.cpu().numpy(), n),
            "split": [split] * (n * k),
            "loss": loss.cpu().double().numpy().ravel(),
            "accuracy": acc.cpu().double().numpy().ravel(),
        }
    )


def interpolate_endpoints(endpoints_dir: Path, images_path: Path, n_alphas: int, out: Path, device) -> pl.DataFrame:
    """The curves stage: every pair of an endpoints zoo (rows: A networks, then B networks) on the test images."""
    from symzoo.atomic import atomic_path
    from symzoo.data.images import load_image_set
    from symzoo.data.zoo import read_zoo

    zoo, images = read_zoo(endpoints_dir), load_image_set(images_path)
    models = zoo.models
    a_rows = models.filter(pl.col("role") == "a").sort("pair_id")
    b_rows = models.filter(pl.col("role") == "b").sort("pair_id")
    if a_rows["pair_id"].to_list() != b_rows["pair_id"].to_list():
        raise ValueError(f"{endpoints_dir}: every pair needs one A and one B network")
    pairs = pl.DataFrame(
        {"pair_id": a_rows["pair_id"], "model_a": a_rows["source_model_id"], "model_b": b_rows["source_model_id"]}
    )
    a = zoo.tensor(a_rows["model_id"].to_numpy(), device)
    b = zoo.tensor(b_rows["model_id"].to_numpy(), device)
    x, y = (torch.from_numpy(v).to(device) for v in images.split("test"))
    alpha = alphas(n_alphas)
    loss, acc = curves(zoo.spec, a, b, alpha, x, y)
    frame = curves_frame(pairs, alpha, loss, acc, "test")
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)
    return frame
