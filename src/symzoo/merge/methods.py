"""Merge methods: for each pair (A, B), the two networks to interpolate between. The one registry of methods.

- ``naive``, ``rebasin``, ``rebasin_scaling``, ``canonical``: alignments by a symmetry group element
  (:func:`symzoo.align.rebasin.align_pair`); the functions of A and B never change;
- ``medoid``: a control. Both endpoints are the train split's medoid network (:func:`symzoo.fit.fidelity.medoid`),
  whatever A and B are: a collapsed decoder at its best. Its barrier is 0 by construction, so a 0 from an
  autoencoder means something only if its endpoints are far more faithful than the medoid's;
- ``ae_<encoder>``: both networks replaced by their autoencoder reconstructions (one canonical network per
  orbit when the encoder is invariant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symzoo.align import METHODS as ALIGNMENTS

if TYPE_CHECKING:  # the names below are read by the Snakefile too: importing this module stays light
    import torch

    from symzoo.models.autoencoder import Autoencoder
    from symzoo.nets.spec import NetSpec

MEDOID = "medoid"
AE_PREFIX = "ae_"
BASELINES: tuple[str, ...] = (*ALIGNMENTS, MEDOID)
LABELS = {
    "naive": "naive",
    "rebasin": "Git Re-Basin",
    "rebasin_scaling": "Re-Basin + scaling",
    "canonical": "canonical form",
    "medoid": "medoid (control)",
}


def autoencoder_method(encoder: str) -> str:
    """The method name of the autoencoder ``encoder`` (``ae_<encoder>``)."""
    return f"{AE_PREFIX}{encoder}"


def encoder_of(method: str) -> str | None:
    """The encoder name of an autoencoder method, None for the baselines."""
    return method.removeprefix(AE_PREFIX) if method.startswith(AE_PREFIX) else None


def label(method: str) -> str:
    """Readable name of a method (``ae_<encoder>`` → ``AE (<encoder>)``)."""
    encoder = encoder_of(method)
    return LABELS.get(method, method) if encoder is None else f"AE ({encoder})"


def check_method(method: str, ae: Autoencoder | None = None, medoid: torch.Tensor | None = None) -> None:
    """A clear error for an unknown method or a method without what it needs."""
    if encoder_of(method) is not None:
        if ae is None:
            raise ValueError(f"method {method!r} needs a trained autoencoder (--model)")
    elif method not in BASELINES:
        raise ValueError(f"method must be one of {BASELINES} or {AE_PREFIX}<encoder>, not {method!r}")
    elif method == MEDOID and medoid is None:
        raise ValueError("method 'medoid' needs the train split's medoid network")


def endpoints(
    method: str,
    spec: NetSpec,
    a: torch.Tensor,
    b: torch.Tensor,
    ae: Autoencoder | None = None,
    medoid: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The networks (n, P) to interpolate between for pairs (a[i], b[i]) under ``method``."""
    import torch

    from symzoo.align.rebasin import align_pair
    from symzoo.models.autoencoder import reconstruct

    check_method(method, ae, medoid)
    if encoder_of(method) is not None:
        recon = reconstruct(ae, torch.cat([a, b]))
        return recon[: len(a)], recon[len(a) :]
    if method == MEDOID:
        both = medoid.to(a.device, a.dtype).expand_as(a).clone()
        return both, both.clone()
    aligned = [
        align_pair(spec, x, y, method, torch.Generator().manual_seed(seed + i)) for i, (x, y) in enumerate(zip(a, b))
    ]
    return torch.stack([x for x, _ in aligned]), torch.stack([y for _, y in aligned])
