"""What several stages share: loading the inputs every merging stage reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from symzoo.data.images import ImageSet, load_image_set
from symzoo.data.zoo import Zoo, read_zoo
from symzoo.fit.fidelity import log_probs, medoid


@dataclass(frozen=True)
class FidelitySettings:
    """How fidelity is measured: at most ``networks`` networks per split and ``images`` images, the controls'
    retrieval pool at most ``train_pool`` train networks (seeded choices)."""

    networks: int = 500
    images: int = 1000
    train_pool: int = 5000
    seed: int = 0

    @classmethod
    def from_options(cls, options: dict) -> FidelitySettings:
        return cls(**options)


def subset(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``ids``, a seeded choice kept in order."""
    if n >= len(ids):
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def images(
    image_set: ImageSet, split: str, n: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``n`` images of a split with their labels (a seeded choice), on ``device``."""
    x, y = image_set.split(split)
    rows = subset(np.arange(len(x)), n, seed)
    return torch.from_numpy(x[rows]).to(device), torch.from_numpy(y[rows]).to(device)


def measured_on(
    zoo: Zoo, image_set: ImageSet, split: str, n: int, seed: int, device: torch.device, ids: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the networks ``ids`` of a zoo are measured on: at most ``n`` images of ``split`` and their labels
    (:func:`images`); for an INR zoo the pixel coordinates and the networks' own ground-truth images (n, pixels)
    (:func:`symzoo.zoo.inr.zoo_targets`; ``split`` and ``n`` do not apply)."""
    if zoo.spec.is_inr:
        from symzoo.zoo.inr import zoo_coordinates, zoo_targets

        ids = np.zeros(0, dtype=np.int64) if ids is None else ids
        return zoo_coordinates(zoo, device), zoo_targets(zoo, image_set, ids, device)
    return images(image_set, split, n, seed, device)


def train_medoid(
    zoo: Zoo, image_set: ImageSet, settings: FidelitySettings, device: torch.device
) -> tuple[int, torch.Tensor]:
    """The train split's medoid (model id, parameters (P,)): the train network with the smallest mean KL from the
    other train networks on validation images (never the test images)."""
    ids = subset(zoo.ids("train"), settings.networks, settings.seed)
    if len(ids) < 2:
        raise ValueError(f"zoo {zoo.root}: the medoid needs at least 2 kept train networks, found {len(ids)}")
    x, _ = measured_on(zoo, image_set, "val", settings.images, settings.seed, device)
    index = medoid(log_probs(zoo.spec, zoo.tensor(ids, device), x), inr=zoo.spec.is_inr)
    return int(ids[index]), zoo.tensor([ids[index]], device)[0]


def load_inputs(zoo_dir: Path, data_path: Path) -> tuple[Zoo, ImageSet]:
    return read_zoo(zoo_dir), load_image_set(data_path)
