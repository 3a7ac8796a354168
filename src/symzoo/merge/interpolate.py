"""Pairwise linear interpolation: pairs of networks, (1 - alpha) theta_A + alpha theta_B, evaluated in bulk.

Every pair x alpha of a method is one network of a batched (vmapped) evaluation through the shared functional
forward (:func:`symzoo.nets.functional.batched_forward`). Besides ``loss`` and ``score``, every network on a path
is compared with the two original networks of its pair (``dist_a``, ``dist_b``), so endpoints that do not compute
their originals' functions show.

The column names mean the same for every zoo; what they measure follows the zoo's task (``spec.task``, written
into every curves table as ``task``; units: :mod:`symzoo.report.units`):

- ``classification``: ``loss`` the test cross-entropy, ``score`` the test accuracy, ``dist_a`` / ``dist_b`` the
  mean KL(ref || path network) over the test images;
- ``inr`` (SIRENs, scored on their renders): ``x`` is the pixel grid and ``y`` (2, n, pixels) holds the
  ground-truth images of each pair's A and B. ``loss`` is the pixel MSE of the path network's render against the
  image mixed like the parameters, (1 - alpha) image_A + alpha image_B (the ground truth itself for a network and a
  transformed copy of it, the paper's INR orbit score), ``score`` the PSNR (dB) of the same, and ``dist_a`` /
  ``dist_b`` the MSE between the path network's render and ``ref_a``'s / ``ref_b``'s.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from symzoo.data.merge import ORIGINAL_COLUMNS
from symzoo.nets.functional import activation_floats, batched_forward, first_layer, forward_from_first, render
from symzoo.nets.spec import TASKS, NetSpec

log = logging.getLogger(__name__)

SCORE_COLUMNS = {"classification": "test_accuracy", "inr": "psnr"}
"""Per task (:data:`symzoo.nets.spec.TASKS`), the ``models.parquet`` column networks are ranked by."""


def score_column(task: str | NetSpec) -> str:
    """The ``models.parquet`` column networks are ranked by, for a zoo's task (or its spec): ``test_accuracy``,
    or ``psnr`` for an INR zoo (which has no test accuracy)."""
    task = task.task if isinstance(task, NetSpec) else task
    if task not in SCORE_COLUMNS:
        raise ValueError(f"unknown zoo task {task!r}, not one of {TASKS}")
    return SCORE_COLUMNS[task]


def top_test_networks(models: pl.DataFrame, top: int, task: str) -> np.ndarray:
    """Row ids of the ``top`` kept test-split networks with the highest test accuracy (INRs: PSNR; ties by id);
    ``task``: the zoo's (``spec.task``)."""
    return (
        models.filter(pl.col("kept") & (pl.col("split") == "test"))
        .sort([score_column(task), "model_id"], descending=[True, False])
        .head(top)["model_id"]
        .to_numpy()
    )


def select_pairs(models: pl.DataFrame, n_pairs: int, top: int, seed: int, task: str) -> pl.DataFrame:
    """``n_pairs`` disjoint pairs drawn (seeded) from the ``top`` kept test-split networks by test accuracy (INR
    zoos, ``task`` ``inr``: by PSNR).

    Returns pair_id, model_a, model_b (row indices of the zoo). Fewer than ``2 n_pairs`` candidates is an error
    that says how many pairs the zoo allows (a silently smaller experiment would be misread).
    """
    candidates = top_test_networks(models, top, task)
    if 2 * n_pairs > len(candidates):
        raise ValueError(
            f"merge.pairs = {n_pairs} needs {2 * n_pairs} kept test-split networks among the top {top}, the zoo has "
            f"{len(candidates)}: set merge.pairs to at most {len(candidates) // 2} or grow the zoo"
        )
    chosen = np.random.default_rng(seed).choice(candidates, size=2 * n_pairs, replace=False)
    return pl.DataFrame(
        {"pair_id": np.arange(n_pairs), "model_a": chosen[0::2], "model_b": chosen[1::2]},
        schema={"pair_id": pl.Int64, "model_a": pl.Int64, "model_b": pl.Int64},
    )


def alphas(n: int) -> torch.Tensor:
    """``n`` evenly spaced interpolation weights from 0 to 1 (both ends included)."""
    return torch.linspace(0.0, 1.0, n, dtype=torch.float64)


def interpolate(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """(1 - alpha) a + alpha b for pairs a, b (n, P) and weights alpha (K,): (n, K, P)."""
    alpha = alpha.to(a.device, a.dtype)[None, :, None]
    return (1 - alpha) * a[:, None] + alpha * b[:, None]


PASS_BYTES = 256 * 2**20
"""Memory of one evaluation pass on a GPU: the largest activation of its networks x images (about 3x that in total)."""
CPU_PASS_BYTES = 32 * 2**20
"""On a CPU a pass is kept small (the Small MLP Zoo bench: one pair's 21 alphas on all 5,000 images): with 256 MB
passes the batched curves took 1.7-3.0 s where the per-network loop took 0.95-1.8 s (`symzoo bench merge`: every
elementwise op streamed through memory); with 32 MB passes they take what the loop takes or less, and memory stays
flat in the number of pairs."""


def pass_bytes(device: torch.device | str) -> int:
    """The activation bytes of one evaluation pass on ``device``: :data:`PASS_BYTES` on a GPU, the cache-sized
    :data:`CPU_PASS_BYTES` on a CPU."""
    return CPU_PASS_BYTES if torch.device(device).type == "cpu" else PASS_BYTES


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    """``F.log_softmax(logits, -1)`` computed as logits - logsumexp: the same values, and on a CPU 2-3x faster
    over a last dimension of a few classes (torch 2.13's log_softmax kernel vectorises along that dimension)."""
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)


def plan_passes(spec: NetSpec, k: int, n_images: int, budget: int = PASS_BYTES) -> tuple[int, int]:
    """(pairs, images) per pass so that the largest activation of a pass, pairs x k alphas x images x the
    network's largest per-image activation (:func:`~symzoo.nets.functional.activation_floats`), stays within
    ``budget`` bytes: memory flat in the number of pairs, whatever the architecture."""
    per_network_image = activation_floats(spec) * 4
    images = max(1, min(n_images, budget // (k * per_network_image)))
    pairs = max(1, budget // (k * images * per_network_image))
    return pairs, images


@torch.no_grad()
def curves(
    spec: NetSpec,
    a: torch.Tensor,
    b: torch.Tensor,
    alpha: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    ref_a: torch.Tensor | None = None,
    ref_b: torch.Tensor | None = None,
    budget: int | None = None,
) -> dict[str, torch.Tensor]:
    """Along the segments from a to b (n, P) at weights alpha (K,), on images x with labels y: ``loss``
    (cross-entropy) and ``score`` (accuracy), and, against reference networks ``ref_a`` / ``ref_b`` (n, P; default
    a / b, e.g. the original networks when a and b are their reconstructions), ``dist_a`` / ``dist_b``: the mean
    KL(ref || path network) over images. Each value is (n, K). INR zoos: see the module docstring. ``budget``: the
    bytes of one pass's largest activation (default :func:`pass_bytes` of the device).

    All K alphas of a group of pairs run in one pass. The first layer is linear in the parameters, so it is
    computed once for each end and mixed, (1 - alpha) z_A + alpha z_B, instead of K times; passes are sized by
    :func:`plan_passes`.
    """
    ref_a, ref_b = (a if ref_a is None else ref_a), (b if ref_b is None else ref_b)
    budget = pass_bytes(a.device) if budget is None else budget
    if spec.is_inr:
        return _render_curves(spec, a, b, alpha, x, y, ref_a, ref_b, budget)
    n, k = len(a), len(alpha)
    out = {name: torch.zeros(n, k, dtype=torch.float64, device=a.device) for name in CURVE_VALUES}
    per_pass, batch_size = plan_passes(spec, k, len(x), budget)
    weights = torch.stack([1 - alpha, alpha], dim=1).to(a.device, a.dtype)  # (K, 2): how much of each end
    first = torch.vmap(first_layer, in_dims=(None, 0, None))
    rest = torch.vmap(forward_from_first, in_dims=(None, 0, 0))
    for s in range(0, n, per_pass):
        group = slice(s, min(s + per_pass, n))
        path = interpolate(a[group], b[group], alpha).flatten(0, 1)
        refs = torch.cat([ref_a[group], ref_b[group]])
        g = len(refs) // 2
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            ends = torch.stack([first(spec, a[group], xb), first(spec, b[group], xb)], dim=1)  # (g, 2, B, ...)
            z = (weights @ ends.flatten(2)).view(g * k, *ends.shape[2:])  # (g * K, B, ...): one product mixes them
            logits = rest(spec, path, z).unflatten(0, (g, k))  # (g, K, B, C)
            logp = log_probs(logits).flatten(2)  # (g, K, B * C)
            ref = F.log_softmax(batched_forward(spec, refs, xb), dim=-1).unflatten(0, (2, g)).flatten(2)
            p_ref = ref.exp()  # (2, g, B * C)
            # sums over the batch's images as contractions over (image, class): one matmul each, no (g, K, B, C)
            # temporaries; KL(ref || path) summed = sum p_ref log p_ref - sum p_ref log p_path
            cross = torch.einsum("rgn,gkn->rgk", p_ref, logp)
            dist = (p_ref * ref).sum(-1, keepdim=True) - cross
            onehot = F.one_hot(yb, logits.shape[-1]).to(logp.dtype).flatten()
            values = {
                "loss": -(logp @ onehot),
                "score": (logits.argmax(-1) == yb).sum(-1),
                "dist_a": dist[0],
                "dist_b": dist[1],
            }
            for name, value in values.items():
                out[name][group] += value.double()
    return {name: (value / len(x)) for name, value in out.items()}


CURVE_VALUES = ("loss", "score", "dist_a", "dist_b")
"""The values of a curve, each (n, K): see :func:`curves` and the module docstring for what they measure."""


def _render_curves(spec, a, b, alpha, x, y, ref_a, ref_b, budget) -> dict[str, torch.Tensor]:
    """:func:`curves` of INRs (module docstring): renders on the pixel grid ``x``, truth ``y`` (2, n, pixels)."""
    if y.shape != (2, len(a), len(x)):
        raise ValueError(f"INR curves need ground truth (2, {len(a)}, {len(x)}), got {tuple(y.shape)}")
    n, k = len(a), len(alpha)
    out = {name: torch.zeros(n, k, dtype=torch.float64, device=a.device) for name in CURVE_VALUES}
    per_pass, _ = plan_passes(spec, k, len(x), budget)
    mix = alpha.to(a.device, y.dtype).view(1, k, 1)
    for s in range(0, n, per_pass):
        group = slice(s, min(s + per_pass, n))
        g = len(a[group])
        path = render(spec, interpolate(a[group], b[group], alpha).flatten(0, 1), x).unflatten(0, (g, k))
        truth = (1 - mix) * y[0, group, None] + mix * y[1, group, None]
        error = (path - truth).double().square().mean(-1)
        out["loss"][group] = error
        out["score"][group] = -10 * torch.log10(error.clamp_min(1e-12))
        for name, ref in (("dist_a", ref_a), ("dist_b", ref_b)):
            out[name][group] = (path - render(spec, ref[group], x)[:, None]).double().square().mean(-1)
    return out


def curves_frame(pairs: pl.DataFrame, alpha: torch.Tensor, values: dict[str, torch.Tensor], split: str) -> pl.DataFrame:
    """The curves table: one row per pair x alpha (pair_id, model_a, model_b, alpha, split, and the values)."""
    n, k = values["loss"].shape
    return pl.DataFrame(
        {
            "pair_id": np.repeat(pairs["pair_id"].to_numpy(), k),
            "model_a": np.repeat(pairs["model_a"].to_numpy(), k),
            "model_b": np.repeat(pairs["model_b"].to_numpy(), k),
            "alpha": np.tile(alpha.cpu().numpy(), n),
            "split": [split] * (n * k),
            **{name: values[name].cpu().numpy().ravel() for name in CURVE_VALUES},
        }
    )


ORIGINALS = ORIGINAL_COLUMNS[1:]
"""The originals' own loss and score, per pair: :func:`originals_table`."""


def originals_table(
    spec: NetSpec, pairs: pl.DataFrame, ref_a: torch.Tensor, ref_b: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> pl.DataFrame:
    """The loss and score of every pair's original networks ``ref_a`` / ``ref_b`` (one row per pair: ``pair_id``
    and :data:`ORIGINALS`), measured once and shared by every method's curves."""
    ends = curves(spec, ref_a, ref_b, alphas(2), x, y)
    values = (ends["loss"][:, 0], ends["loss"][:, 1], ends["score"][:, 0], ends["score"][:, 1])
    return pl.DataFrame(
        {"pair_id": pairs["pair_id"], **{name: v.cpu().numpy() for name, v in zip(ORIGINALS, values, strict=True)}}
    )


def curves_table(
    spec: NetSpec,
    pairs: pl.DataFrame,
    a: torch.Tensor,
    b: torch.Tensor,
    ref_a: torch.Tensor,
    ref_b: torch.Tensor,
    alpha: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    originals: pl.DataFrame,
    split: str = "test",
) -> pl.DataFrame:
    """:func:`curves_frame` of the segments a → b with the distances ``dist_a`` / ``dist_b`` from the originals
    ``ref_a`` / ``ref_b``, plus the originals' own loss and score (``originals``, :func:`originals_table`) and
    the zoo's ``task`` (``spec.task``: ``classification``, or ``inr``: loss is a render MSE, score a PSNR in dB,
    dist a render MSE; see the module docstring)."""
    if originals["pair_id"].to_list() != pairs["pair_id"].to_list():
        raise ValueError("curves_table: the originals' table is not of these pairs (pair_id differs)")
    frame = curves_frame(pairs, alpha, curves(spec, a, b, alpha, x, y, ref_a, ref_b), split)
    k = len(alpha)
    return frame.with_columns(
        *[pl.Series(name, originals[name].to_numpy().repeat(k)) for name in ORIGINALS],
        pl.lit(spec.task).alias("task"),  # how loss, score and dist read (see the module docstring)
    )
