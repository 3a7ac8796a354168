"""Generative models of weights: representations that round-trip, flows that learn a toy distribution, equivariant
vector fields, reproducible sampling, the product of spheres, and the novelty measures on their controls."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.align.represent import REPRESENTATIONS, represent, restore
from symzoo.data.networks import read_networks
from symzoo.fit import flow
from symzoo.fit.fidelity import log_probs
from symzoo.fit.generation_methods import models_for, representations_for
from symzoo.fit.samples import diversity, ece, ensembles, judge, nearest_train
from symzoo.models.flows import FieldArch, VelocityField
from symzoo.nets.functional import batched_forward
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import random_transform, transform
from tests.test_nets import SPECS, init_params

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kind", REPRESENTATIONS)
@pytest.mark.parametrize("name", SPECS)
def test_representations_keep_the_function_and_round_trip(name, kind):
    spec = SPECS[name]
    thetas, reference = init_params(spec, 4, seed=1), init_params(spec, 1, seed=2)[0]
    moved, g = represent(spec, thetas, reference, kind)
    x = torch.randn(6, *spec.input_shape)
    torch.testing.assert_close(batched_forward(spec, moved, x), batched_forward(spec, thetas, x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(restore(spec, moved, g), thetas, rtol=1e-5, atol=1e-5)
    if kind != "raw":
        assert not torch.allclose(moved, thetas, atol=1e-3)


@pytest.mark.parametrize("name", SPECS)
def test_aligned_networks_are_closer_to_the_reference_and_an_orbit_aligns_to_its_own_member(name):
    """Copies of a network under random group elements, aligned to another copy of it, all land on that copy (its
    normalised form): the alignment undoes the group. Random networks move closer to the reference."""
    spec = SPECS[name]
    theta = init_params(spec, 1, seed=1)
    g = random_transform(spec, "both", (4,), torch.Generator().manual_seed(4))
    copies = transform(spec, theta.expand(4, -1), g)
    reference = copies[0]
    for kind in ("aligned", "normalized"):
        moved, _ = represent(spec, copies[1:], reference, kind)
        target = represent(spec, reference[None], reference, kind)[0][0]
        if kind == "normalized" or spec.activation == "tanh":  # ReLU 'aligned' keeps each copy's own scales
            torch.testing.assert_close(moved, target.expand_as(moved), rtol=1e-4, atol=1e-4)
    raw = init_params(spec, 8, seed=5)
    aligned, _ = represent(spec, raw, reference, "aligned")
    assert (aligned - reference).norm(dim=1).mean() < (raw - reference).norm(dim=1).mean()


def test_normalized_relu_units_lie_on_unit_spheres():
    spec = SPECS["cnn-relu"]
    moved, _ = represent(spec, init_params(spec, 3, seed=1), init_params(spec, 1, seed=2)[0], "normalized")
    for block in flow.sphere_blocks(spec):
        torch.testing.assert_close(moved[:, block].norm(dim=-1), torch.ones(3, len(block)))
    manifold = flow.manifold_of(spec, "sphere")
    torch.testing.assert_close(manifold.projx(moved), moved)
    x, u = moved[:1], 0.05 * torch.randn(1, spec.num_params)  # within the injectivity radius (|u| < pi per block)
    tangent = manifold.proju(x, u)
    end = manifold.expmap(x, tangent)
    torch.testing.assert_close(manifold.projx(end), end, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(manifold.logmap(x, end), tangent, rtol=1e-3, atol=1e-4)


TOY = NetSpec("mlp", (1, 1, 1), (1,), 2, "relu")  # 6 parameters: a 2-D distribution in two of them


def _toy(n: int, seed: int) -> torch.Tensor:
    """Two well-separated Gaussian modes (weights 0.7 / 0.3) in coordinates 0 and 5; the rest fixed."""
    g = torch.Generator().manual_seed(seed)
    mode = (torch.rand(n, generator=g) < 0.3).float()
    centre = torch.stack([4 * mode - 2, 2 - 4 * mode], dim=1)
    points = centre + 0.3 * torch.randn(n, 2, generator=g)
    thetas = torch.tensor([0.5, 0.1, 1.0, -1.0, 0.2, 0.0]).repeat(n, 1)
    thetas[:, 0], thetas[:, 5] = points[:, 0], points[:, 1]
    return thetas


def _settings(**keys) -> flow.FlowSettings:
    entry = config.validate({"representation": "raw", "hidden": 64, "layers": 2, "epochs": 60, "batch_size": 64,
                             "warmup_steps": 10, "lr": 3e-3} | keys, "generate_model", where="model")  # fmt: skip
    entry["operator"] = "ngnn" if entry["operator"] == "auto" else entry["operator"]
    return flow.FlowSettings.from_options(entry)


@pytest.mark.slow  # a real flow training run (about 15 s)
@pytest.mark.parametrize("coupling", ["independent", "ot"])
def test_a_flow_reproduces_a_two_mode_toy_distribution(coupling):
    """Samples land in the two modes with their weights, at their spreads; the learned log-density is higher at a
    mode than between them. A flow that learned nothing (Gaussian noise) fails each check."""
    images = (torch.randn(16, 1, 1, 1), torch.randint(0, 2, (16,)))  # the toy's "networks" are scored on something
    trained = flow.fit_flow(TOY, _settings(coupling=coupling), _toy(1024, 0), _toy(256, 1), images, torch.device("cpu"),
                            False)  # fmt: skip
    drawn = flow.sample(trained.model, 2000, "euler", 50, torch.Generator().manual_seed(0))
    points = drawn[:, [0, 5]]
    upper = points[:, 0] > 0
    assert abs(upper.float().mean().item() - 0.3) < 0.06
    for mask, centre in ((upper, (2.0, -2.0)), (~upper, (-2.0, 2.0))):
        torch.testing.assert_close(points[mask].mean(0), torch.tensor(centre), atol=0.25, rtol=0)
        assert 0.15 < points[mask].std(0).mean().item() < 0.6
    fixed = drawn[:, 1:5] - torch.tensor([0.1, 1.0, -1.0, 0.2])
    assert fixed.abs().max() < 1e-3, "coordinates that never vary stay put"
    at_modes = torch.tensor([[-2.0, 0.1, 1.0, -1.0, 0.2, 2.0]])
    between = torch.tensor([[0.0, 0.1, 1.0, -1.0, 0.2, 0.0]])
    field = trained.model
    assert flow.log_likelihood(field, at_modes, 40, 2, 0) > flow.log_likelihood(field, between, 40, 2, 0) + 2


@pytest.mark.parametrize("name", ["mlp-tanh", "cnn-relu"])
def test_a_graph_vector_field_is_equivariant(name):
    spec = SPECS[name]
    operator = "scalegmn" if spec.activation == "tanh" else "ngnn"
    torch.manual_seed(0)
    field = VelocityField(spec, FieldArch("graph", 16, 2, operator=operator)).eval()
    x, t = init_params(spec, 3, seed=1), torch.tensor([0.1, 0.5, 0.9])
    kind = "both" if operator == "scalegmn" else "permutation"
    g = random_transform(spec, kind, (3,), torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = transform(spec, field(x, t), g)
        assert (field(transform(spec, x, g), t) - expected).abs().max() < 1e-4 * expected.abs().max()
        assert (field(x, t) - field(x, t.flip(0))).abs().max() > 1e-4, "the field depends on time"


def test_sampling_is_reproducible_from_the_seed():
    torch.manual_seed(0)
    field = VelocityField(TOY, FieldArch("flat", 16, 1))
    for sampler in flow.SAMPLERS:
        a, b = (flow.sample(field, 5, sampler, 10, torch.Generator().manual_seed(3)) for _ in range(2))
        c = flow.sample(field, 5, sampler, 10, torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c), sampler


def _zoo(n: int = 40) -> tuple[NetSpec, torch.Tensor, torch.Tensor, torch.Tensor]:
    spec = SPECS["mlp-relu"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, *spec.input_shape, generator=g)
    return spec, init_params(spec, n, seed=1), x, torch.randint(0, 10, (64,), generator=g)


def test_a_memoriser_has_no_novelty_and_a_noisy_copy_is_novel_and_bad():
    spec, train, x, y = _zoo()
    logp_train = log_probs(spec, train, x)
    agree, kl = nearest_train(log_probs(spec, train[:10], x), logp_train)
    assert torch.all(agree == 1) and torch.all(kl < 1e-9)
    noisy = train[:10] + 3.0 * train.std(0) * torch.randn(
        10, spec.num_params, generator=torch.Generator().manual_seed(1)
    )
    frame, summary = judge(spec, noisy, logp_train, x, y, 0.3)
    assert summary["nearest_agreement_median"] < 0.6 and summary["nearest_kl_median"] > 0.1
    assert (frame["accuracy"] < 0.3).all(), "large noise destroys the network"


def test_diversity_ensembles_and_calibration():
    spec, train, x, y = _zoo()
    logp = log_probs(spec, train, x)
    assert diversity(logp[:1].expand(5, -1, -1)) == pytest.approx(0.0, abs=1e-12)
    assert 0 < diversity(logp) <= math.log(2)
    table = ensembles(logp, y, [1, 5, 100], 3, 0)
    assert table["k"].to_list() == [1, 5], "a size larger than the population is left out"
    perfect = torch.nn.functional.one_hot(y, 10).double()
    assert ece(perfect, y) == pytest.approx(0.0)
    assert ece(torch.full((64, 10), 0.1, dtype=torch.float64), y) == pytest.approx(abs((y == 0).double().mean() - 0.1))


def test_models_and_representations_follow_the_zoo_activation():
    section = config.validate({}, "generate", where="generate")
    assert "sphere_normalized" in models_for(section, "relu") and "sphere_normalized" not in models_for(section, "tanh")
    assert representations_for(section, "tanh") == ["aligned", "normalized", "raw"]
    with pytest.raises(config.ConfigError, match="spheres hold the 'normalized' representation"):
        config.validate({"datasets": {}, "zoos": {}, "generate": {"models": {"m": {"representation": "raw",
                         "geometry": "sphere"}}}})  # fmt: skip


def test_the_stages_write_samples_summaries_and_the_report(tmp_path):
    """represent, generate (a tiny flow with every sampler, and every control) and generate-report, end to end on a
    tiny zoo: the files read back in the contract's shapes, the memoriser copies train networks, the noise control
    matches the best model's validation accuracy."""
    from symzoo.data.merge import write_medoid
    from symzoo.data.zoo import read_zoo
    from symzoo.stages import generate, generate_report
    from symzoo.stages import represent as represent_stage
    from tests.fixtures.tiny_zoo import SPEC as TINY
    from tests.fixtures.tiny_zoo import write_tiny_zoo

    zoo_dir, data = write_tiny_zoo(tmp_path)
    zoo = read_zoo(zoo_dir)
    write_medoid(tmp_path / "medoid.json", int(zoo.ids("train")[0]))
    represent_stage.run(zoo_dir, "aligned", tmp_path / "medoid.json", tmp_path / "aligned")
    aligned = read_networks(tmp_path / "aligned" / "params.npy", TINY, len(zoo))
    x = torch.randn(5, *TINY.input_shape)
    torch.testing.assert_close(batched_forward(TINY, aligned, x), batched_forward(TINY, zoo.tensor(range(len(zoo))), x),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    options = config.validate({"samples": 12, "steps": 5, "ensembles": [1, 4], "ensemble_repeats": 2,
                               "likelihood": {"networks": 4, "steps": 3, "probes": 1},
                               "models": {"flat": {"representation": "aligned", "hidden": 16, "layers": 1, "epochs": 2,
                                                   "warmup_steps": 2, "batch_size": 16}}},
                              "generate", where="generate")  # fmt: skip
    device = torch.device("cpu")
    run = {}
    for model in ("flat", "test", "memoriser", "gaussian"):
        run[model] = generate.run(zoo_dir, data, options, model, tmp_path / model, device, tmp_path / "aligned" /
                                  "params.npy", 0.3, progress=False)  # fmt: skip
    run["noise"] = generate.run(zoo_dir, data, options, "noise", tmp_path / "noise", device, None, 0.3,
                                {"flat": tmp_path / "flat" / "summary.json"}, progress=False)  # fmt: skip
    for model, summary in run.items():
        samples = read_networks(tmp_path / model / "samples.npy", TINY)
        frame = pl.read_parquet(tmp_path / model / "networks.parquet")
        assert len(samples) == len(frame) == (len(zoo.ids("test")) if model == "test" else 12), model
        assert [e["k"] for e in summary["ensembles"]] == [1, 4]
    flat = json.loads((tmp_path / "flat" / "summary.json").read_text())
    assert set(flat["samplers"]) == {"euler", "dopri5", "stochastic"} and flat["likelihood"]["networks"] == 4
    assert math.isfinite(flat["likelihood"]["per_parameter"]) and (tmp_path / "flat" / "model.pt").is_file()
    assert run["memoriser"]["test"]["nearest_agreement_median"] == 1.0
    assert abs(run["noise"]["val_accuracy"] - run["flat"]["val_accuracy"]) < 0.05
    with pytest.raises(ValueError, match="--represented"):
        generate.run(zoo_dir, data, options, "flat", tmp_path / "x", device, None, 0.3)
    with pytest.raises(ValueError, match="--model 'gan'"):
        generate.run(zoo_dir, data, options, "gan", tmp_path / "x", device, None, 0.3)
    text = generate_report.run({f"tiny/{m}": tmp_path / m for m in run}, tmp_path / "tables", tmp_path / "figures")
    assert "## tiny" in text and "**(best)**" in text
    table = pl.read_parquet(tmp_path / "tables" / generate_report.TABLE)
    assert set(table["model"]) == set(run)
    for name in generate_report.FIGURES:
        assert (tmp_path / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_an_equivariant_field_gives_an_invariant_density(activation):
    """With the exact divergence, log p(g · θ) = log p(θ) for random group elements the field commutes with
    (permutations, and the sign flips of tanh units; ScaleGMN-B for tanh, NG-GNN for ReLU); a flat field's density
    moves."""
    spec = NetSpec("mlp", (1, 2, 2), (3, 3), 2, activation)
    thetas = init_params(spec, 3, seed=1)
    kind = "both" if activation == "tanh" else "permutation"
    g = random_transform(spec, kind, (3,), torch.Generator().manual_seed(2))
    moved = transform(spec, thetas, g)
    gaps = {}
    for field in ("graph", "flat"):
        torch.manual_seed(0)
        arch = FieldArch(field, 8, 2, operator="scalegmn" if activation == "tanh" else "ngnn")
        model = VelocityField(spec, arch, scale=torch.full((spec.num_params,), 0.7))
        log_p = flow.log_likelihood(model, thetas, 8, 1, 0, exact=True)
        gaps[field] = (flow.log_likelihood(model, moved, 8, 1, 0, exact=True) - log_p).abs().max().item()
        assert torch.isfinite(log_p).all()
    assert gaps["graph"] < 1e-3, gaps
    assert gaps["flat"] > 1e-2, gaps
