"""Networks a stage produces, readers beside writers: ``params.npy`` and ``summary.json``.

A stage that makes networks (a fine-tuning method's tuned test networks, a generative model's samples) writes them
as ``params.npy``: float32 (N, P) in the zoo's own layout (``arch.json``), so anything that reads a zoo runs them;
the rows' order is the stage's contract (e.g. the zoo's test networks in ``models.parquet`` order). Beside it,
``summary.json`` says what they are and how they were made. Readers check what they read and name the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from symzoo.atomic import atomic_path
from symzoo.nets.spec import NetSpec


def write_networks(path: Path, thetas: torch.Tensor | np.ndarray) -> None:
    """Networks ``thetas`` (N, P) as float32 ``params.npy``; NaN/inf parameters are refused (nothing written)."""
    array = np.asarray(thetas.detach().cpu() if isinstance(thetas, torch.Tensor) else thetas, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{path}: networks must be (N, P), got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise FloatingPointError(f"{path}: rows {bad[:10].tolist()} have NaN/inf parameters; nothing written")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def read_networks(path: Path, spec: NetSpec, n: int | None = None) -> torch.Tensor:
    """The networks (N, P) of a ``params.npy``, checked against the spec (and the expected count ``n``)."""
    try:
        array = np.load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such networks file") from None
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    fits = array.ndim == 2 and array.shape[1] == spec.num_params and n in (None, len(array))
    if array.dtype != np.float32 or not fits:
        expected = f"float32 ({n or 'N'}, {spec.num_params})"
        raise ValueError(f"{path}: expected {expected} networks, not {array.dtype} {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: networks with NaN/inf parameters")
    return torch.from_numpy(array)


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN) and tuples as lists."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """A ``summary.json`` (non-finite numbers as null), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_ready(summary), indent=2, default=str) + "\n")


def read_summary(path: Path) -> dict[str, Any]:
    """A ``summary.json``; errors name the file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such summary") from None
    except ValueError as err:
        raise ValueError(f"{path}: not a JSON summary ({err})") from None
