"""The autoencoders' functional reconstruction loss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def kl_loss(recon_logits: Tensor, orig_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(softmax(orig / T) || softmax(recon / T)), averaged over all (network, image) pairs.

    Logits (M, B, classes) are flattened to (M * B, classes): ``batchmean`` divides by M * B, the number of
    (network, image) pairs (not M). The reference code's functional loss.
    """
    t = temperature
    recon = F.log_softmax(recon_logits.flatten(0, -2) / t, dim=-1)
    orig = F.log_softmax(orig_logits.flatten(0, -2) / t, dim=-1)
    return F.kl_div(recon, orig, log_target=True, reduction="batchmean") * t**2
