"""``model.pt``: a trained metanetwork with the config that rebuilds it, the one format every trained model uses.

A saveable model has ``config()`` (JSON-ready: spec and architecture) and a class method
``from_config(config, state_dict)``; the file holds ``{"config", "state_dict", **extra}`` (the training settings,
the best epoch, ...). Autoencoders, fine-tuning operators and flow-matching vector fields are saved alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)


def save_model(path: str | Path, model: nn.Module, state_dict: dict[str, Tensor], **extra: Any) -> None:
    """Write ``model.pt`` (the caller writes atomically). Written through a file object, so the zip does not record
    the (temporary) file name: equal models give equal bytes."""
    with open(path, "wb") as f:
        torch.save({"config": model.config(), "state_dict": state_dict, **extra}, f)


def load_model(path: str | Path, cls: type[M], device: str | torch.device = "cpu") -> M:
    """The ``cls`` saved in ``path``, in eval mode, on ``device``; errors name the file."""
    path, what = Path(path), cls.__name__.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several error types for a file that is not a torch zip
        raise ValueError(f"{path}: not a saved {what} (not a readable torch file: {type(err).__name__})") from err
    try:
        model = cls.from_config(saved["config"], saved["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: not a saved {what} ({err})") from err
    return model.to(torch.device(device)).eval()
