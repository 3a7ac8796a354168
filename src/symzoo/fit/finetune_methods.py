"""The methods of the fine-tuning experiment, by name (import-free: the workflow reads them when it is parsed).

From a validated ``finetune`` section: the controls ``initial`` and ``best_train``; ``sgd_<objective>`` (one run,
an output folder per budget: ``sgd_<objective>-<epochs>``); and ``<operator>_<objective>`` for every operator entry
and each of its objectives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONTROLS = ("initial", "best_train")
"""The controls: the test networks themselves, and every test network replaced by the single most accurate train
network (a high mean accuracy that says nothing about fine-tuning)."""
OBJECTIVES = ("ce", "l1")
"""``ce``: λ = 0, a pure fine-tuner; ``l1``: λ = the zoo's ``l1``."""


@dataclass(frozen=True)
class Method:
    """One fine-tuning method of the ``finetune`` section: ``kind`` (``control``, ``sgd`` or ``operator``), the
    control's or operator's ``name`` and the ``objective``; ``dirs`` are the output folders it writes (one per
    SGD budget)."""

    name: str
    kind: str
    entry: str | None
    objective: str
    dirs: tuple[str, ...]


def methods(options: Mapping[str, Any]) -> dict[str, Method]:
    """Every method of a validated ``finetune`` section, by name: the controls, ``sgd_<objective>`` and
    ``<operator>_<objective>``."""
    out = {name: Method(name, "control", name, "ce", (name,)) for name in CONTROLS}
    for objective in options["sgd"]["objectives"]:
        name = f"sgd_{objective}"
        out[name] = Method(name, "sgd", None, objective, tuple(f"{name}-{e}" for e in sorted(options["sgd"]["epochs"])))
    for entry, operator in options["operators"].items():
        for objective in operator["objectives"]:
            name = f"{entry}_{objective}"
            out[name] = Method(name, "operator", entry, objective, (name,))
    return out
