"""The autoencoders' functional reconstruction losses: the KL of classifiers' predictions, the MSE of INRs' renders."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from symzoo.nets.spec import NetSpec


def kl_loss(recon_logits: Tensor, orig_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(softmax(orig / T) || softmax(recon / T)), averaged over all (network, image) pairs.

    Logits (M, B, classes) are flattened to (M * B, classes): ``batchmean`` divides by M * B, the number of
    (network, image) pairs (not M). The reference code's functional loss.
    """
    t = temperature
    recon = F.log_softmax(recon_logits.flatten(0, -2) / t, dim=-1)
    orig = F.log_softmax(orig_logits.flatten(0, -2) / t, dim=-1)
    return F.kl_div(recon, orig, log_target=True, reduction="batchmean") * t**2


def render_loss(recon_pixels: Tensor, orig_pixels: Tensor) -> Tensor:
    """Mean squared error between the images rendered by the reconstructed INRs and by the input INRs, both
    (M, pixels, channels), averaged over networks and pixels (the INR autoencoders' loss in the paper)."""
    return F.mse_loss(recon_pixels, orig_pixels)


def reconstruction_loss(spec: NetSpec, recon: Tensor, orig: Tensor, temperature: float) -> Tensor:
    """The loss of the outputs of reconstructions against the originals': :func:`render_loss` for INRs (SIRENs),
    :func:`kl_loss` at ``temperature`` for classifiers."""
    return render_loss(recon, orig) if spec.is_inr else kl_loss(recon, orig, temperature)
