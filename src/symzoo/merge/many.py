"""Merging many networks into one: K networks of a zoo averaged in a shared frame, against their parents.

A merge of K networks is one network. The methods (:data:`BASELINES`, and per autoencoder ``ae_<encoder>``,
``ae_align_<encoder>``, ``ae_latent_mean_<encoder>``):

- ``naive``: the mean of the raw parameters (no alignment; the floor);
- ``merge_many``: Git Re-Basin's MergeMany (Ainsworth et al. 2023): every network in turn (random order) is
  matched by weight matching to the mean of the others as currently aligned, until a round changes no element
  (or ``rounds`` rounds); the merge is the mean of the aligned networks. It needs about K x rounds assignment
  problems per *group*;
- ``align_reference``: the mean of the networks, each aligned on its own to the train medoid (one assignment per
  network, reused by every group it falls into);
- ``ae_align_<encoder>``: the mean of the networks, each aligned on its own to its decoded latent
  dec(enc(θ)) (the decoder's frame; one encode and one assignment per network);
- ``ae_<encoder>``: the mean of the K reconstructions (what interpolating reconstructions, the paper's merge,
  gives at the midpoint for K = 2);
- ``ae_latent_mean_<encoder>``: the decoded mean latent dec(mean_i enc(θ_i)), the merge the paper's latent space
  implies;
- ``medoid``: a control, the train medoid whatever the K networks are. A merge that does not beat it has kept
  nothing of its parents.

Every alignment uses Re-Basin's group (:func:`symzoo.align.rebasin.match_each`: permutations, and sign flips for
odd activations), so the per-network frames and MergeMany differ only in what each network is matched to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl
import torch

from symzoo.align.rebasin import align_each
from symzoo.fit.fidelity import accuracy, log_probs, paired_kl
from symzoo.merge.methods import (
    ALIGN_REFERENCE,
    MEDOID,
    MERGE_MANY,
    ae_align_method,
    autoencoder_method,
    latent_mean_method,
)
from symzoo.nets.spec import NetSpec

NAIVE = "naive"
BASELINES = (NAIVE, MERGE_MANY, ALIGN_REFERENCE, MEDOID)


def merge_many(spec: NetSpec, thetas: torch.Tensor, rounds: int = 20, seed: int = 0) -> torch.Tensor:
    """Git Re-Basin's MergeMany of networks ``thetas`` (K, P): the mean (P,) of the networks after each was matched,
    in turn and repeatedly, to the mean of the others (see the module docstring)."""
    if thetas.ndim != 2 or len(thetas) < 2:
        raise ValueError(f"merge_many: expected at least 2 networks (K, {spec.num_params}), got {tuple(thetas.shape)}")
    rng = np.random.default_rng(seed)
    aligned = thetas.detach().to("cpu", torch.float64).clone()
    for _ in range(rounds):
        changed = False
        for i in rng.permutation(len(thetas)).tolist():
            others = (aligned.sum(0) - aligned[i]) / (len(aligned) - 1)
            moved = align_each(spec, thetas[i : i + 1].detach().to("cpu", torch.float64), others, seed)[0]
            changed |= not torch.equal(moved, aligned[i])
            aligned[i] = moved
        if not changed:
            break
    return aligned.mean(0).to(thetas.device, thetas.dtype)


def draw_groups(candidates: np.ndarray, ks: Sequence[int], groups: int, seed: int) -> list[tuple[int, int, np.ndarray]]:
    """``groups`` seeded draws of k distinct ``candidates`` (zoo rows) for every k: (k, group, rows). Fewer
    candidates than the largest k is an error that says how many the zoo has."""
    if max(ks) > len(candidates):
        raise ValueError(
            f"merge.many.ks up to {max(ks)} needs as many kept test networks, the zoo has {len(candidates)}"
        )
    rng = np.random.default_rng(seed)
    return [(k, g, np.sort(rng.choice(candidates, size=k, replace=False))) for k in ks for g in range(groups)]


Merge = Callable[[np.ndarray], torch.Tensor]
"""A merge method: the rows (zoo row ids) of K networks → the merged network (P,)."""


def frame_merges(
    spec: NetSpec,
    params: Callable[[np.ndarray], torch.Tensor],
    rows: np.ndarray,
    medoid: torch.Tensor,
    autoencoders: Mapping[str, object],
    rounds: int,
    seed: int,
) -> dict[str, Merge]:
    """Every merge method (module docstring) for networks among ``rows`` (``params(ids)`` → (n, P)): the
    per-network alignments, reconstructions and latents of all ``rows`` are computed once here (O(N)), and
    each group only averages its members' (``autoencoders``: encoder name → Autoencoder)."""
    from symzoo.models.autoencoder import decode_latents, latents, reconstruct

    thetas = params(rows)
    index = {int(r): i for i, r in enumerate(rows)}

    def mean_of(table: torch.Tensor) -> Merge:
        return lambda ids: table[[index[int(r)] for r in ids]].mean(0)

    merges: dict[str, Merge] = {
        NAIVE: mean_of(thetas),
        MERGE_MANY: lambda ids: merge_many(spec, params(ids), rounds, seed),
        ALIGN_REFERENCE: mean_of(align_each(spec, thetas, medoid, seed)),
        MEDOID: lambda ids: medoid,
    }
    for encoder, ae in autoencoders.items():
        recon = reconstruct(ae, thetas)
        z = latents(ae, thetas)
        merges[ae_align_method(encoder)] = mean_of(align_each(spec, thetas, recon, seed))
        merges[autoencoder_method(encoder)] = mean_of(recon)
        merges[latent_mean_method(encoder)] = lambda ids, ae=ae, z=z: decode_latents(
            ae, z[[index[int(r)] for r in ids]].mean(0, keepdim=True)
        )[0]
    return merges


def merge_many_table(
    spec: NetSpec,
    params: Callable[[np.ndarray], torch.Tensor],
    groups: list[tuple[int, int, np.ndarray]],
    merges: Mapping[str, Merge],
    x: torch.Tensor,
    y: torch.Tensor,
) -> pl.DataFrame:
    """One row per group (k, group) and method: the merged network's test ``accuracy`` and ``loss``, its mean
    KL from the parents (``dist``), and the parents' mean and best accuracy and loss (``parents_*``; best:
    the highest accuracy, the lowest loss)."""
    rows = []
    for k, g, ids in groups:
        parents = log_probs(spec, params(ids), x)
        merged_names = list(merges)
        merged = log_probs(spec, torch.stack([merges[m](ids) for m in merged_names]).to(x.device), x)
        parent_acc = accuracy(parents, y)
        parent_loss = -parents.gather(-1, y.view(1, -1, 1).expand(len(ids), -1, 1)).squeeze(-1).double().mean(1)
        acc = accuracy(merged, y)
        loss = -merged.gather(-1, y.view(1, -1, 1).expand(len(merged), -1, 1)).squeeze(-1).double().mean(1)
        for i, method in enumerate(merged_names):
            dist = paired_kl(parents, merged[i : i + 1].expand_as(parents)).mean()
            rows.append(
                {
                    "k": k,
                    "group": g,
                    "method": method,
                    "models": ids.tolist(),
                    "accuracy": float(acc[i]),
                    "loss": float(loss[i]),
                    "dist": float(dist),
                    "parents_mean_accuracy": float(parent_acc.mean()),
                    "parents_best_accuracy": float(parent_acc.max()),
                    "parents_mean_loss": float(parent_loss.mean()),
                    "parents_best_loss": float(parent_loss.min()),
                }
            )
    return pl.DataFrame(rows, schema_overrides={"models": pl.List(pl.Int64)})
