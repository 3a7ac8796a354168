"""Merge methods: for each pair (A, B), the two networks to interpolate between. The one registry of methods.

- ``naive``, ``rebasin``, ``rebasin_scaling``, ``canonical``: alignments by a symmetry group element
  (:func:`symzoo.align.rebasin.align_pair`); the functions of A and B never change;
- ``medoid``: a control. Both endpoints are the train split's medoid network (:func:`symzoo.fit.fidelity.medoid`),
  whatever A and B are: a collapsed decoder at its best. Its barrier is 0 by construction, so a 0 from an
  autoencoder means something only if its endpoints are far more faithful than the medoid's;
- ``align_reference``: a control for the autoencoder's frame. Every network aligned on its own to one reference,
  the train split's medoid, by weight matching (:func:`symzoo.align.rebasin.align_each`: Re-Basin's group) — the
  canonical form of the flow-matching thesis and of Pittorino et al. One assignment per network, no decoder;
- ``ae_<encoder>``: both networks replaced by their autoencoder reconstructions (one canonical network per
  orbit when the encoder is invariant);
- ``ae_align_<encoder>``: exact canonicalisation through the decoder. Each network θ is aligned on its own to its
  decoded latent dec(enc(θ)) by the same weight matching: the *original function*, written in the decoder's
  frame (endpoint KL 0). One encode and one assignment per network.

Encoder names must not start with ``align_`` or ``latent_mean_`` (``ae_align_<x>`` names the aligned method of
encoder ``x``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symzoo.align import METHODS as ALIGNMENTS

if TYPE_CHECKING:  # the names below are read by the Snakefile too: importing this module stays light
    import torch

    from symzoo.models.autoencoder import Autoencoder
    from symzoo.nets.spec import NetSpec

MEDOID = "medoid"
ALIGN_REFERENCE = "align_reference"
NEEDS_MEDOID = (MEDOID, ALIGN_REFERENCE)
AE_PREFIX = "ae_"
AE_ALIGN_PREFIX = "ae_align_"
AE_LATENT_MEAN_PREFIX = "ae_latent_mean_"
"""The decoded mean latent of K networks: a merge-many method only (:mod:`symzoo.merge.many`)."""
MERGE_MANY = "merge_many"
"""Git Re-Basin's MergeMany: a merge-many method only (:mod:`symzoo.merge.many`)."""
BASELINES: tuple[str, ...] = (*ALIGNMENTS, ALIGN_REFERENCE, MEDOID)
LABELS = {
    "naive": "naive",
    "rebasin": "Git Re-Basin",
    "merge_many": "MergeMany (Re-Basin)",
    "rebasin_scaling": "Re-Basin + scaling",
    "canonical": "canonical form",
    "align_reference": "aligned to the medoid",
    "medoid": "medoid (control)",
}
AE_LABELS = {AE_ALIGN_PREFIX: "aligned to AE ({})", AE_LATENT_MEAN_PREFIX: "AE latent mean ({})", AE_PREFIX: "AE ({})"}
"""Readable names of the autoencoder methods by prefix (the longest prefixes first)."""


def autoencoder_method(encoder: str) -> str:
    """The method name of the autoencoder ``encoder``'s reconstructions (``ae_<encoder>``)."""
    return f"{AE_PREFIX}{encoder}"


def ae_align_method(encoder: str) -> str:
    """The method name of the originals aligned to ``encoder``'s decodings (``ae_align_<encoder>``)."""
    return f"{AE_ALIGN_PREFIX}{encoder}"


def latent_mean_method(encoder: str) -> str:
    """The method name of ``encoder``'s decoded mean latent (``ae_latent_mean_<encoder>``)."""
    return f"{AE_LATENT_MEAN_PREFIX}{encoder}"


def autoencoder_methods(encoder: str) -> tuple[str, str]:
    """Both merge methods of an autoencoder: its reconstructions and the originals in its decoder's frame."""
    return autoencoder_method(encoder), ae_align_method(encoder)


def _ae_prefix(method: str) -> str | None:
    return next((prefix for prefix in AE_LABELS if method.startswith(prefix)), None)


def encoder_of(method: str) -> str | None:
    """The encoder name of an autoencoder method (``ae_<encoder>``, ``ae_align_<encoder>``,
    ``ae_latent_mean_<encoder>``), None otherwise."""
    prefix = _ae_prefix(method)
    return None if prefix is None else method.removeprefix(prefix)


def label(method: str) -> str:
    """Readable name of a method (``ae_<encoder>`` → ``AE (<encoder>)``, ``ae_align_<encoder>`` → ``aligned to
    AE (<encoder>)``, ...)."""
    prefix = _ae_prefix(method)
    return LABELS.get(method, method) if prefix is None else AE_LABELS[prefix].format(method.removeprefix(prefix))


def check_method(method: str, ae: Autoencoder | None = None, medoid: torch.Tensor | None = None) -> None:
    """A clear error for an unknown method or a method without what it needs."""
    if encoder_of(method) is not None:
        if ae is None:
            raise ValueError(f"method {method!r} needs a trained autoencoder (--model)")
    elif method not in BASELINES:
        raise ValueError(
            f"method must be one of {BASELINES}, {AE_PREFIX}<encoder> or {AE_ALIGN_PREFIX}<encoder>, not {method!r}"
        )
    elif method in NEEDS_MEDOID and medoid is None:
        raise ValueError(f"method {method!r} needs the train split's medoid network")


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

    from symzoo.align.rebasin import align_each, align_pair
    from symzoo.models.autoencoder import reconstruct

    check_method(method, ae, medoid)
    if encoder_of(method) is not None or method == ALIGN_REFERENCE:
        both = torch.cat([a, b])
        if method == ALIGN_REFERENCE:
            both = align_each(spec, both, medoid, seed)
        elif method.startswith(AE_ALIGN_PREFIX):
            both = align_each(spec, both, reconstruct(ae, both), seed)
        else:
            both = reconstruct(ae, both)
        return both[: len(a)], both[len(a) :]
    if method == MEDOID:
        both = medoid.to(a.device, a.dtype).expand_as(a).clone()
        return both, both.clone()
    aligned = [
        align_pair(spec, x, y, method, torch.Generator().manual_seed(seed + i)) for i, (x, y) in enumerate(zip(a, b))
    ]
    return torch.stack([x for x, _ in aligned]), torch.stack([y for _, y in aligned])
