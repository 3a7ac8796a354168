"""INR zoos: one SIREN per image, all fitted together as one vmapped population.

A SIREN (:func:`symzoo.nets.spec.siren_spec`, the one functional forward with ``activation="sine"``) maps the
pixel coordinates (:func:`symzoo.nets.functional.coordinates`) of an ``image_size`` grid to gray values in
[0, 1]. The images are those of an image set (e.g. the 5,000 bundled 28x28 MNIST digits), rescaled from [-1, 1]
to [0, 1] and, when smaller than the grid, upsampled bilinearly (:func:`targets`), so every later stage recomputes
a network's ground truth from the image set and the zoo's ``image_index`` column: the zoo format needs no extra
file.

Initialisation (:func:`init_sirens`, the SIREN paper's): first layer U(±1/d_in), the others U(±sqrt(6/d_in)/w0),
biases 0. Fitting (:func:`fit_sirens`): full-image MSE, Adam on the stacked (M, P) parameters. Adam acts
element by element and the population's loss is the sum of the networks' own losses, so this is exactly M
independent Adam runs, one gradient call (``torch.vmap`` of the forward) for all of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from symzoo.data.images import SPLITS, ImageSet
from symzoo.data.zoo import Zoo
from symzoo.nets.functional import batched_forward, coordinates, render
from symzoo.nets.spec import NetSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InrFitSettings:
    """How the SIRENs are fitted: ``steps`` full-image Adam steps at learning rate ``lr``, initialised by ``seed``."""

    steps: int
    lr: float
    seed: int


def all_images(x_splits: list[np.ndarray]) -> np.ndarray:
    """The images of every split, concatenated in split order (train, val, test): what ``image_index`` counts."""
    return np.concatenate(x_splits)


def targets(images: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Ground-truth images (N, H * W) in [0, 1]: images (N, 1, h, w) in [-1, 1] rescaled and upsampled
    bilinearly (corners aligned) to ``size``, row-major like :func:`~symzoo.nets.functional.coordinates`."""
    x = torch.tensor(np.asarray(images), dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"INR targets need grayscale images (N, 1, H, W), got {tuple(x.shape)}")
    x = (x + 1) / 2
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)
    return x.clamp(0, 1).flatten(1)


def init_sirens(spec: NetSpec, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` SIRENs (n, P) with the SIREN initialisation (see the module docstring)."""
    theta = torch.zeros(n, spec.num_params)
    for layer in range(spec.num_layers):
        slot = spec.tensor(layer, "weight")
        fan_in = spec.sizes[layer]
        bound = 1 / fan_in if layer == 0 else math.sqrt(6 / fan_in) / spec.w0
        theta[:, slot.offset : slot.stop] = (torch.rand(n, slot.size, generator=generator) * 2 - 1) * bound
    return theta


def mse(images: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (..., pixels) → (...)."""
    return (images - truth).square().mean(-1)


def psnr(error: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of a mean squared error, for values in [0, 1]."""
    return -10 * torch.log10(error.clamp_min(1e-12))


def fit_sirens(
    spec: NetSpec,
    truth: torch.Tensor,
    settings: InrFitSettings,
    device: torch.device,
    init: torch.Tensor | None = None,
    log_every: int = 100,
) -> torch.Tensor:
    """One SIREN per image of ``truth`` (M, H * W), fitted together from ``init`` (M, P; default
    :func:`init_sirens` seeded by ``settings.seed``); returns the parameters (M, P) on the CPU."""
    if not spec.is_inr:
        raise ValueError(f"INR zoos need a SIREN spec (activation 'sine'), not {spec}")
    side = int(math.isqrt(truth.shape[1]))
    size = (side, side) if side * side == truth.shape[1] else None
    if size is None:
        raise ValueError(f"fit_sirens: {truth.shape[1]} pixels is not a square image")
    coords = coordinates(*size, device=device)
    truth = truth.to(device)
    if init is None:
        init = init_sirens(spec, len(truth), torch.Generator().manual_seed(settings.seed))
    theta = init.detach().clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=settings.lr)
    for step in range(1, settings.steps + 1):
        out = batched_forward(spec, theta, coords)[..., 0]
        loss = mse(out, truth).sum()  # a sum of independent losses: each network gets its own gradient
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == settings.steps:
            log.info("step %d/%d: mean MSE %.5f", step, settings.steps, float(loss.detach()) / len(truth))
    theta = theta.detach()
    final = mse(render(spec, theta, coords), truth)
    if not torch.isfinite(final).all():
        raise FloatingPointError("INR fitting diverged (NaN/inf MSE): lower the learning rate")
    return theta.cpu()


def image_size(zoo: Zoo) -> tuple[int, int]:
    """The (height, width) an INR zoo's networks render (``arch.json``'s ``image_size``)."""
    if not zoo.spec.is_inr or "image_size" not in zoo.meta:
        raise ValueError(f"zoo {zoo.root} is not an INR zoo (no SIREN spec and image_size in its arch.json)")
    height, width = zoo.meta["image_size"]
    return int(height), int(width)


def zoo_coordinates(zoo: Zoo, device: torch.device | str | None = None) -> torch.Tensor:
    """The pixel coordinates (pixels, 2) an INR zoo's networks are rendered at."""
    return coordinates(*image_size(zoo), device=device)


def zoo_targets(
    zoo: Zoo, image_set: ImageSet, ids: Sequence[int] | np.ndarray, device: torch.device | str | None = None
) -> torch.Tensor:
    """The ground-truth images (n, pixels) of the INRs ``ids`` of a zoo: their ``image_index`` images of the
    image set (train, val, test concatenated), upsampled as when they were fitted."""
    images = all_images([image_set.split(s)[0] for s in SPLITS])
    index = zoo.models["image_index"].to_numpy()[np.asarray(ids, dtype=np.int64)]
    return targets(images[index], image_size(zoo)).to(device)
