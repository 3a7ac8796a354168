"""``--device auto|cpu|cuda``: every stage resolves its device here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CHOICES = ("auto", "cpu", "cuda")


def resolve(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; asking for CUDA without one is an error."""
    import torch  # here, not at the top: `symzoo --help` and `check-config` need no torch

    if name not in CHOICES:
        raise ValueError(f"device must be one of {CHOICES}, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")
