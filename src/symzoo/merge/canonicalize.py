"""Canonicalization: for a merging method, the two networks of each pair to interpolate between.

Baselines come from :func:`symzoo.align.rebasin.align_pair` (naive, rebasin, rebasin_scaling, canonical);
``ae_<encoder>`` replaces both networks by their autoencoder reconstructions (one canonical network per
orbit when the encoder is invariant). The endpoints are written in the zoo format: rows 0..n-1 are the
pairs' A networks, rows n..2n-1 their B networks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from symzoo.align.rebasin import METHODS, align_pair
from symzoo.data.zoo import read_zoo, write_zoo
from symzoo.models.autoencoder import Autoencoder
from symzoo.nets.spec import NetSpec

AE_PREFIX = "ae_"


def check_method(method: str, ae: Autoencoder | None) -> None:
    if method.startswith(AE_PREFIX):
        if ae is None:
            raise ValueError(f"method {method!r} needs a trained autoencoder (--model)")
    elif method not in METHODS:
        raise ValueError(f"method must be one of {METHODS} or {AE_PREFIX}<encoder>, not {method!r}")


def endpoints(
    method: str, spec: NetSpec, a: torch.Tensor, b: torch.Tensor, ae: Autoencoder | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The networks (n, P) to interpolate between for pairs (a[i], b[i]) under ``method``."""
    check_method(method, ae)
    if method.startswith(AE_PREFIX):
        from symzoo.fit.autoencoder import reconstruct

        recon = reconstruct(ae, torch.cat([a, b]))
        return recon[: len(a)], recon[len(a) :]
    aligned = [
        align_pair(spec, x, y, method, torch.Generator().manual_seed(seed + i)) for i, (x, y) in enumerate(zip(a, b))
    ]
    return torch.stack([x for x, _ in aligned]), torch.stack([y for _, y in aligned])


def canonicalize_pairs(
    zoo_dir: Path, pairs_path: Path, method: str, out_dir: Path, ae: Autoencoder | None = None, seed: int = 0
) -> Path:
    """Write the endpoints of every pair in ``pairs_path`` under ``method`` as a zoo in ``out_dir``."""
    zoo = read_zoo(zoo_dir)
    pairs = pl.read_parquet(pairs_path)
    a, b = (zoo.tensor(pairs[column].to_numpy()) for column in ("model_a", "model_b"))
    a, b = endpoints(method, zoo.spec, a, b, ae, seed)
    ids = np.concatenate([pairs["model_a"].to_numpy(), pairs["model_b"].to_numpy()])
    source = zoo.models[ids]
    models = pl.DataFrame(
        {
            "model_id": np.arange(len(ids)),
            "run_id": source["run_id"],
            "step": source["step"],
            "test_accuracy": source["test_accuracy"],
            "split": ["test"] * len(ids),
            "kept": [True] * len(ids),
            "pair_id": np.tile(pairs["pair_id"].to_numpy(), 2),
            "role": ["a"] * len(pairs) + ["b"] * len(pairs),
            "source_model_id": ids,
        }
    )
    params = torch.cat([a, b]).float().cpu().numpy()
    meta = {"dataset": zoo.meta.get("dataset"), "source": {"kind": "endpoints", "method": method, "zoo": str(zoo_dir)}}
    return write_zoo(out_dir, zoo.spec, params, models, meta)
