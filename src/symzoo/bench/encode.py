"""``bench_encode``: encoder + decoder throughput, and how the cost per network grows with its size.

Two measurements, each time-boxed (about ``budget_s`` seconds apiece), in eval mode without gradients:

- ``networks_per_s``: encode + decode of batches of Small CNN Zoo networks (4,970 parameters), the batch
  built by indexing (:func:`symzoo.graph.neural_graph.to_batch`) as in training;
- ``s_per_network``: seconds per network for two tanh MLPs whose input and hidden widths differ by x2:
  64-64-64-10 (8,970 parameters, 202 nodes) and 128-128-128-10 (34,314 parameters, 394 nodes). The parameter
  count grows x3.8 while the node count only grows x1.9; the message passing runs over one edge per weight, so
  a per-network time ratio near the parameter ratio (``time_ratio`` vs ``param_ratio``) shows the cost is
  linear in the parameter count (the decoder's output layer is linear in it too). On a CPU, batch enough
  networks (``scaling_batch``) that both sizes overflow the caches: with a few small networks whose
  activations stay in cache, the ratio looks super-linear (a memory effect, not more work).

- ``train_step_s``: one training step (encode + decode, forward and backward) of each encoder at the default
  config's shape (a batch of 32 tanh MLPs 64-16-16-10, hidden 64 / 32), with messages computed densely per
  bipartite layer block and through torch-geometric's gathers and scatters, timed in turns; ``pyg_over_dense``
  is the speed-up of the dense path (both compute the same function, see tests/test_encoders.py).

Speed is never asserted by a test; the CLI reports these figures (``symzoo bench``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from symzoo.bench.timing import interleaved_medians
from symzoo.config import entry
from symzoo.models.autoencoder import Architecture, EncoderKind, build_autoencoder
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec

SCALING_SPECS = (
    NetSpec("mlp", (1, 8, 8), (64, 64), 10, "tanh"),
    NetSpec("mlp", (1, 16, 8), (128, 128), 10, "tanh"),
)


def random_params(spec: NetSpec, n: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian parameters with std 1 / sqrt(fan_in) per layer (the scale of a trained zoo, roughly)."""
    theta = torch.empty(n, spec.num_params)
    for layer in range(spec.num_layers):
        w, b = spec.tensor(layer, "weight"), spec.tensor(layer, "bias")
        fan_in = w.size // w.shape[0]
        theta[:, w.offset : b.stop] = torch.randn(n, b.stop - w.offset, generator=generator) * fan_in**-0.5
    return theta


@torch.no_grad()
def bench_encode(
    device: str | torch.device = "cpu",
    kind: EncoderKind = "scalegmn",
    hidden: int = 32,
    layers: int = 2,
    latent: int = 16,
    batch: int = 32,
    scaling_batch: int = 16,
    budget_s: float = 1.5,
    seed: int = 0,
) -> dict:
    """Throughput of encode + decode and per-network cost at two network sizes (see the module docstring).

    ``batch`` networks per call for the throughput, ``scaling_batch`` for the two MLP sizes; each of the two
    measurements takes about ``budget_s`` seconds. Returns ``networks_per_s`` (float), ``s_per_network``
    ({parameter count: seconds}), ``param_ratio``, ``time_ratio`` and the settings measured.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sizes = {"hidden": hidden, "layers": layers, "latent": latent}

    def call(spec: NetSpec, n: int) -> Callable[[], object]:
        thetas = random_params(spec, n, generator)
        arch = Architecture.from_options(entry("encoder", kind=kind, **sizes))
        model = build_autoencoder(spec, arch, thetas_train=thetas).to(device).eval()
        thetas = thetas.to(device)
        model(thetas[:2])  # warm-up (lazy initialisation, allocator) at a fraction of a full call's cost
        return lambda: model(thetas)

    result: dict = {"device": str(device), "kind": kind, **sizes, "batch": batch, "scaling_batch": scaling_batch}
    (seconds,) = interleaved_medians([call(small_cnn_zoo_spec(), batch)], device, budget_s)
    result["networks_per_s"] = batch / seconds
    small, large = SCALING_SPECS
    seconds = interleaved_medians([call(small, scaling_batch), call(large, scaling_batch)], device, budget_s)
    result["s_per_network"] = {spec.num_params: s / scaling_batch for spec, s in zip(SCALING_SPECS, seconds)}
    result["param_ratio"] = large.num_params / small.num_params
    result["time_ratio"] = seconds[1] / seconds[0]
    result["train_step_s"] = bench_message_passing(device, budget_s=budget_s, seed=seed)
    return result


TRAIN_STEP_VARIANTS = {
    "scalegmn": {"message": "bilinear", "hidden": 64, "layers": 4, "latent": 128},
    "scalegmn_mlp_messages": {"message": "mlp", "hidden": 64, "layers": 4, "latent": 128},
    "ngnn": {"readout": "outputs", "hidden": 32, "layers": 3, "latent": 128},
}


def bench_message_passing(device: torch.device, batch: int = 32, budget_s: float = 1.5, seed: int = 0) -> dict:
    """Seconds per training step, dense vs torch-geometric message passing (see the module docstring)."""
    spec = NetSpec("mlp", (1, 8, 8), (16, 16), 10, "tanh")
    thetas = random_params(spec, batch, torch.Generator().manual_seed(seed)).to(device)
    out = {}
    for name, options in TRAIN_STEP_VARIANTS.items():
        kind = "ngnn" if name == "ngnn" else "scalegmn"
        steps = []
        for path in ("dense", "pyg"):
            torch.manual_seed(seed)
            arch = Architecture.from_options(entry("encoder", kind=kind, **options, dropout=0.0, message_passing=path))
            model = build_autoencoder(spec, arch, thetas_train=thetas)
            model = model.to(device)

            def step(model=model):
                with torch.enable_grad():
                    model.zero_grad(set_to_none=True)
                    model(thetas).square().mean().backward()

            step()
            steps.append(step)
        dense, pyg = interleaved_medians(steps, device, budget_s)
        out[name] = {"dense": dense, "pyg": pyg, "pyg_over_dense": pyg / dense}
    return out


if __name__ == "__main__":
    print(bench_encode())
