"""Run a function in a fresh child process and measure the child's peak resident memory.

A spawned child is a fresh interpreter, so its memory is that of what it ran plus the interpreter and its
imports, unmixed with the caller's. The peak is the kernel's high-water mark of the child's own address space
(``VmHWM`` in ``/proc/self/status``, reset to the current resident memory just before the call through
``/proc/self/clear_refs``), not ``ru_maxrss``: Linux carries ``ru_maxrss`` over ``exec``, so a spawned child's
would start at its parent's resident memory at the fork.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int:
    """A memory field (``VmRSS``, ``VmHWM``) of ``/proc/self/status`` in bytes."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # kB
    raise OSError(f"{_STATUS} has no {field}")


def _measured(fn: Callable[..., Any], args: tuple) -> tuple[Any, int, int]:
    _CLEAR_REFS.write_text("5")  # reset the high-water mark to the current resident memory
    baseline = _status_bytes("VmRSS")
    result = fn(*args)
    return result, baseline, _status_bytes("VmHWM")


def in_child(fn: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, int]]:
    """``fn(*args)`` run in a spawned child (``fn`` importable by name); its result and ``{"baseline_rss_bytes",
    "peak_rss_bytes"}``: the child's resident memory just before the call and its peak during it. Linux only
    (it reads ``/proc``); elsewhere OSError."""
    if not _STATUS.exists():
        raise OSError(f"measuring peak memory needs Linux's {_STATUS}")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result, baseline, peak = pool.submit(_measured, fn, args).result()  # a child that dies: BrokenProcessPool
    return result, {"baseline_rss_bytes": baseline, "peak_rss_bytes": peak}
