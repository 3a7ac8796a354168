"""``symzoo bench NAME``: speeds measured side by side in one run, printed as one JSON object.

- ``zoo-train``: vmapped population training against a sequential torch.nn loop and a batched-matmul bound;
- ``encode``: encoder + decoder throughput, and seconds per network at two network sizes;
- ``merge``: batched interpolation against a per-network loop; re-basin and autoencoder seconds per pair.
"""

from __future__ import annotations

import torch


def run(name: str, device: torch.device, quick: bool = False) -> dict:
    """Run benchmark ``name`` on ``device``; ``quick`` shrinks the problem (a smoke run, not for figures)."""
    if name == "zoo-train":
        from symzoo.bench.zoo_train import bench_zoo_train

        kwargs = {"ms": (8, 16), "samples": 2_000, "repeats": 1, "sequential_steps": 20} if quick else {}
        return {"benchmark": name, "device": str(device), "results": bench_zoo_train(device=device, **kwargs)}
    if name == "encode":
        from symzoo.bench.encode import bench_encode

        return {"benchmark": name, **bench_encode(device=device, **({"budget_s": 0.2} if quick else {}))}
    if name == "merge":
        from symzoo.bench.merge import bench_merge

        return {"benchmark": name, **bench_merge(device, **({"pairs": 4, "images": 500} if quick else {}))}
    raise ValueError(f"unknown benchmark {name!r}, expected one of {BENCHMARKS}")


BENCHMARKS = ("zoo-train", "encode", "merge")
