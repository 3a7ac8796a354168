"""``bench_merge``: the interpolation stage's speed against the best loop a user would write, and its memory.

Speed, on the Small MLP Zoo shape (64 → 48 → 32 → 16 → 10, tanh), ``pairs`` pairs x ``alphas`` alphas on
``images`` random images, the same outputs on both sides (loss, accuracy, and the KL from each end of the pair):

- ``batched``: :func:`symzoo.merge.interpolate.curves` (all alphas of a group of pairs in one vmapped pass, the
  first layer mixed from the two ends);
- ``loop``: per pair, the two ends' log-probabilities once, then per alpha one ``torch.nn`` model loaded with the
  interpolated parameters and fed all images in one forward; results gathered as tensors (no ``.item()`` in the
  loop, no small batches).

The two are called in turns (A, B, A, B, ...) ``repeats`` times each; medians are reported, with
``batched_over_loop`` = loop / batched (above 1: the batched path is faster). The two sides' losses are checked
to agree.

Where the time goes on a CPU (torch.profiler, 1 thread): tanh, log-softmax and the matmuls, i.e. the same
elementwise work on both sides, memory-bound. Batching alone is therefore on par with the loop on a CPU, and
only when a pass fits the cache (:data:`~symzoo.merge.interpolate.CPU_PASS_BYTES`; 256 MB passes were 0.53-0.66x
the loop). The batched path's lead comes from its log-probabilities (:func:`~symzoo.merge.interpolate.log_probs`:
logits - logsumexp, where the loop calls ``F.log_softmax``, 2-3x slower over 10 classes) and from summing KL,
loss and accuracy as contractions. Measured (12 runs, 2 idle cores): 1.07-1.27 on 1 thread, 1.11-1.31 on 2.

Memory, on the Small CNN Zoo shape (where one pass's activations are large): the peak memory of ``curves`` for
``memory_pairs`` (default 5 and 20) pairs, over the memory before it, measured on CUDA as
``torch.cuda.max_memory_allocated`` and on a CPU as the peak resident memory of a fresh child process. Passes
are sized by the bytes of their largest activation (:func:`~symzoo.merge.interpolate.plan_passes`), so the peak
is flat in the number of pairs; ``planned`` gives the pass each count gets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from symzoo.bench.child import in_child
from symzoo.bench.encode import random_params
from symzoo.bench.timing import device_label, interleaved_medians
from symzoo.merge.interpolate import alphas, curves, interpolate, pass_bytes, plan_passes
from symzoo.nets.functional import activation_floats
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec

MLP_ZOO_SPEC = NetSpec("mlp", (1, 8, 8), (48, 32, 16), 10, "tanh")


def _problem(spec: NetSpec, pairs: int, images: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    a, b = random_params(spec, pairs, g).to(device), random_params(spec, pairs, g).to(device)
    x = torch.randn(images, *spec.input_shape, generator=g).to(device)
    y = torch.randint(0, spec.num_classes, (images,), generator=g).to(device)
    return a, b, x, y


def _mlp_module(spec: NetSpec, device: torch.device) -> nn.Module:
    """The ``torch.nn`` network of an MLP spec; its parameters follow the spec's layout (weight, bias per layer)."""
    sizes = (math.prod(spec.input_shape), *spec.widths, spec.num_classes)
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.Tanh()]
    return nn.Sequential(*layers[:-1]).to(device)


@torch.no_grad()
def loop_curves(model: nn.Module, a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, x, y) -> torch.Tensor:
    """Loss, accuracy, KL from a and from b (n, K, 4) of every pair x alpha: one full-batch forward each."""
    rows = []
    for theta_a, theta_b, path in zip(a, b, interpolate(a, b, alpha)):
        ends = []
        for theta in (theta_a, theta_b):
            nn.utils.vector_to_parameters(theta, model.parameters())
            ends.append(F.log_softmax(model(x), dim=-1))
        for theta in path:
            nn.utils.vector_to_parameters(theta, model.parameters())
            logits = model(x)
            logp = F.log_softmax(logits, dim=-1)
            kl = [(end.exp() * (end - logp)).sum(-1).mean() for end in ends]
            rows.append(torch.stack([F.nll_loss(logp, y), (logits.argmax(1) == y).float().mean(), *kl]))
    return torch.stack(rows).view(len(a), len(alpha), 4)


def _curves_peak_bytes(pairs: int, images: int, budget: int, device_name: str) -> int:
    """Peak bytes of one ``curves`` call on ``pairs`` CNN pairs over what was held before it (CUDA: allocated)."""
    device = torch.device(device_name)
    spec = small_cnn_zoo_spec()
    a, b, x, y = _problem(spec, pairs, images, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        curves(spec, a, b, alphas(21), x, y, budget=budget)
        return torch.cuda.max_memory_allocated(device) - before
    curves(spec, a, b, alphas(21), x, y, budget=budget)
    return 0


def memory_per_pass(device: torch.device, pairs: tuple[int, ...], images: int, budget: int) -> list[dict]:
    """For each pair count: the planned pass (pairs and images per pass, bytes of its largest activation) and
    the measured peak bytes of ``curves`` (see the module docstring)."""
    spec, k = small_cnn_zoo_spec(), 21
    rows = []
    for n in pairs:
        per_pass, batch = plan_passes(spec, k, images, budget)
        planned = min(per_pass, n) * k * batch * activation_floats(spec) * 4
        if device.type == "cuda":
            peak = _curves_peak_bytes(n, images, budget, str(device))
        else:
            _, rss = in_child(_curves_peak_bytes, n, images, budget, "cpu")
            peak = rss["peak_rss_bytes"] - rss["baseline_rss_bytes"]
        rows.append(
            {
                "pairs": n,
                "pairs_per_pass": min(per_pass, n),
                "images_per_pass": batch,
                "planned_activation_bytes": planned,
                "peak_bytes": peak,
            }
        )
    return rows


def bench_merge(
    device: torch.device,
    pairs: int = 20,
    n_alphas: int = 21,
    images: int = 5000,
    repeats: int = 5,
    memory_pairs: tuple[int, ...] = (5, 20),
    memory_images: int = 500,
    budget: int | None = None,
) -> dict:
    """Speed (batched vs loop, medians of ``repeats`` interleaved calls) and memory per pass; see the module
    docstring. ``budget``: the bytes a pass's largest activation may take (default the stage's,
    :func:`~symzoo.merge.interpolate.pass_bytes` of the device)."""
    device = torch.device(device)
    budget = pass_bytes(device) if budget is None else budget
    spec = MLP_ZOO_SPEC
    a, b, x, y = _problem(spec, pairs, images, device)
    alpha = alphas(n_alphas)
    model = _mlp_module(spec, device)

    def batched() -> dict[str, torch.Tensor]:
        return curves(spec, a, b, alpha, x, y)

    def loop() -> torch.Tensor:
        return loop_curves(model, a, b, alpha, x, y)

    same = torch.allclose(batched()["loss"].float(), loop()[..., 0], rtol=1e-3, atol=1e-4)  # also the warm-up
    if not same:
        raise AssertionError("bench merge: the batched and the loop curves differ; the comparison would be void")
    batched_s, loop_s = interleaved_medians([batched, loop], device, min_rounds=repeats)
    return {
        "device": device_label(device),
        "pairs": pairs,
        "alphas": n_alphas,
        "images": images,
        "repeats": repeats,
        "batched_s": batched_s,
        "loop_s": loop_s,
        "batched_over_loop": loop_s / batched_s,
        "memory": memory_per_pass(device, memory_pairs, memory_images, budget),
    }
