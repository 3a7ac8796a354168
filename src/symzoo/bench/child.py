"""Run a function in a fresh child process and measure the child's peak resident memory.

The peak (``ru_maxrss``) of a fresh interpreter is the memory of what it ran plus the interpreter and its
imports, unmixed with the caller's own history; the child also reports its resident memory before the function
ran (``baseline_rss_bytes``), so the function's own share shows.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from typing import Any


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _measured(fn: Callable[..., Any], args: tuple) -> tuple[Any, int, int]:
    baseline = _peak_rss_bytes()
    return fn(*args), baseline, _peak_rss_bytes()


def in_child(fn: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, int]]:
    """``fn(*args)`` run in a spawned child (``fn`` importable by name); its result and ``{"baseline_rss_bytes",
    "peak_rss_bytes"}``: the child's peak resident memory before the call and over its whole life."""
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        result, baseline, peak = pool.apply(_measured, (fn, args))
    return result, {"baseline_rss_bytes": baseline, "peak_rss_bytes": peak}
