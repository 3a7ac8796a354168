"""``bench_merge``: the merging stage's speed, measured side by side in one run.

On the Small MLP Zoo shape (64 → 48 → 32 → 16 → 10, tanh), 20 pairs x 21 alphas on 5,000 random images:

- ``batched_over_loop``: every pair x alpha evaluated in batched (vmapped) passes (:func:`merge.interpolate.curves`)
  against the usual evaluation loop: the same 420 networks one at a time, each a ``torch.nn`` model fed the test
  images in batches of 256 (as a DataLoader would);
- ``rebasin_s_per_pair``: Git Re-Basin weight matching (:func:`align.rebasin.align_pair`) per pair;
- ``autoencoder_s_per_pair``: reconstructing both networks of a pair with a ScaleGMN autoencoder of the default
  config's size (hidden 32, 2 layers, latent 32).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from symzoo.align.rebasin import align_pair
from symzoo.config import entry
from symzoo.merge.interpolate import alphas, curves, interpolate
from symzoo.models.autoencoder import Architecture, build_autoencoder, reconstruct
from symzoo.nets.spec import NetSpec


def _seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs (the machine's noise only ever adds time)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _networks(spec: NetSpec, n: int, generator: torch.Generator) -> torch.Tensor:
    theta = torch.empty(n, spec.num_params)
    for t in spec.layout:
        fan_in = math.prod(t.shape[1:]) if len(t.shape) > 1 else t.shape[0]
        theta[:, t.offset : t.stop] = torch.randn(n, t.size, generator=generator) / math.sqrt(fan_in)
    return theta


def bench_merge(device: torch.device, pairs: int = 20, n_alphas: int = 21, images: int = 5000) -> dict:
    spec = NetSpec("mlp", (1, 8, 8), (48, 32, 16), 10, "tanh")
    g = torch.Generator().manual_seed(0)
    a, b = _networks(spec, pairs, g).to(device), _networks(spec, pairs, g).to(device)
    x = torch.randn(images, *spec.input_shape, generator=g).to(device)
    y = torch.randint(0, 10, (images,), generator=g).to(device)
    alpha = alphas(n_alphas)

    def batched():
        curves(spec, a, b, alpha, x, y)

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 48),
        nn.Tanh(),
        nn.Linear(48, 32),
        nn.Tanh(),
        nn.Linear(32, 16),
        nn.Tanh(),
        nn.Linear(16, 10),
    ).to(device)

    @torch.no_grad()
    def loop():
        for theta in interpolate(a, b, alpha).flatten(0, 1):
            torch.nn.utils.vector_to_parameters(theta, model.parameters())  # same layout: weight, bias per layer
            loss = correct = 0.0
            for s in range(0, images, 256):
                logits = model(x[s : s + 256])
                loss += F.cross_entropy(logits, y[s : s + 256], reduction="sum").item()
                correct += (logits.argmax(1) == y[s : s + 256]).sum().item()

    batched_s, loop_s = _seconds(batched), _seconds(loop)
    cpu_a, cpu_b = a.cpu(), b.cpu()
    rebasin_s = _seconds(lambda: [align_pair(spec, p, q, "rebasin") for p, q in zip(cpu_a, cpu_b)], 1) / pairs
    arch = Architecture.from_options(
        entry("encoder", kind="scalegmn", message="bilinear", hidden=64, layers=4, latent=128)
    )
    ae = build_autoencoder(spec, arch).to(device).eval()
    ae_s = _seconds(lambda: reconstruct(ae, torch.cat([a, b])), 2) / pairs
    return {
        "device": str(device),
        "pairs": pairs,
        "alphas": n_alphas,
        "images": images,
        "batched_s": batched_s,
        "loop_s": loop_s,
        "batched_over_loop": loop_s / batched_s,
        "rebasin_s_per_pair": rebasin_s,
        "autoencoder_s_per_pair": ae_s,
    }
