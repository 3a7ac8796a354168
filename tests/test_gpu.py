"""The CUDA path: zoo training (traced and compiled with CUDA graphs), the autoencoder, interpolation.

Runs only where torch sees a CUDA device; elsewhere every test is skipped with the reason printed (``-ra``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from symzoo import config
from symzoo.merge.interpolate import alphas, curves
from symzoo.models.autoencoder import Architecture, build_autoencoder
from symzoo.nets.functional import evaluate
from symzoo.zoo.train import train_population
from tests.fixtures.zoo import SPECS, make_data, population, settings, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not exercised")
CUDA = torch.device("cuda")


@pytest.mark.parametrize("compile", [False, True])
def test_zoo_training_on_the_gpu_matches_the_cpu(compile):
    spec = next(iter(SPECS.values()))
    configs, data = population(), make_data(spec)
    cpu = train(spec, configs, data)
    gpu = train_population(spec, configs, data, replace(settings(2), compile=compile), CUDA, progress=False)
    torch.testing.assert_close(gpu.params.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_autoencoder_and_interpolation_on_the_gpu():
    spec = next(iter(SPECS.values()))
    thetas = torch.randn(6, spec.num_params) * 0.3
    options = config.entry("encoder", kind="scalegmn", message="bilinear", hidden=16, layers=2, latent=8)
    ae = build_autoencoder(spec, Architecture.from_options(options), thetas_train=thetas)
    loss = ae.to(CUDA)(thetas.to(CUDA)).square().mean()
    loss.backward()
    x, y = torch.randn(20, *spec.input_shape), torch.randint(0, spec.num_classes, (20,))
    values = curves(spec, thetas[:3].to(CUDA), thetas[3:].to(CUDA), alphas(3), x.to(CUDA), y.to(CUDA))
    own, _ = evaluate(spec, thetas[:3], x, y)
    torch.testing.assert_close(values["loss"][:, 0].float().cpu(), own, rtol=1e-4, atol=1e-4)
