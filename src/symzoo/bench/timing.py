"""Timing helpers shared by the benchmarks: calls taken in turns, medians reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_label(device: torch.device) -> str:
    """What a benchmark reports it ran on: ``CUDA <GPU name>`` or ``CPU``."""
    return f"CUDA {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "CPU"


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call of ``fn``, waiting for the device's queued work on both sides."""
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


def interleaved_medians(
    fns: list[Callable[[], object]], device: torch.device, budget_s: float = 0.0, min_rounds: int = 2
) -> list[float]:
    """Median wall time of each (warmed-up) function, called in turns (A, B, A, B, ...) for at least
    ``min_rounds`` rounds and about ``budget_s`` seconds.

    Taking turns measures the functions side by side, so load from other processes affects them alike.
    """
    times: list[list[float]] = [[] for _ in fns]
    deadline = time.perf_counter() + budget_s
    while len(times[0]) < min_rounds or time.perf_counter() < deadline:
        for fn, samples in zip(fns, times):
            samples.append(timed(fn, device))
    return [statistics.median(samples) for samples in times]
