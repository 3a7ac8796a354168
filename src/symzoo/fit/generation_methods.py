"""The models and controls of the generation experiment, by name (import-free: the workflow reads them when it is
parsed).

Controls, sampled or copied, never trained: ``test`` (the zoo's held-out test networks: what a fresh training run
gives, the reference every model is compared with), ``memoriser`` (random train networks), ``noise`` (random train
networks plus Gaussian noise, its level set so their mean accuracy matches the best model's samples') and
``gaussian`` (a Gaussian fitted to the aligned train networks: the trivial generative model). Models: every entry
of ``generate.models`` that applies to the zoo (a ``sphere`` geometry needs ReLU networks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTROLS = ("test", "memoriser", "noise", "gaussian")


def applies(entry: Mapping[str, Any], activation: str) -> bool:
    """Whether a model entry runs on a zoo of this activation: the product-of-spheres flow needs the positive
    scaling of ReLU units (a tanh unit's incoming vector has no canonical norm)."""
    return entry.get("geometry", "euclidean") != "sphere" or activation == "relu"


def models_for(section: Mapping[str, Any], activation: str) -> list[str]:
    """The generative models of a validated ``generate`` section that run on a zoo of this activation."""
    return [name for name, entry in section["models"].items() if applies(entry, activation)]


def representations_for(section: Mapping[str, Any], activation: str) -> list[str]:
    """The representations the zoo's models and controls need (the Gaussian control reads ``aligned``)."""
    used = {section["models"][name]["representation"] for name in models_for(section, activation)}
    return sorted(used | {"aligned"})
