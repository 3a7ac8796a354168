"""align layer: Git Re-Basin weight matching, group helpers and the algorithmic canonical form."""

import pytest
import torch

from symzoo.align.canonical import canonical_form, canonical_transform, normalizing_transform
from symzoo.align.rebasin import align_pair, weight_matching
from symzoo.nets.functional import batched_forward, forward, unflatten
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec
from symzoo.nets.symmetry import Transform, compose, inverse, random_transform, transform
from tests.test_nets import init_params

SPECS = {
    "mlp-tanh": NetSpec("mlp", (1, 8, 8), (24, 16, 12), 10, "tanh"),
    "mlp-relu": NetSpec("mlp", (1, 8, 8), (24, 16, 12), 10, "relu"),
    "cnn-relu": small_cnn_zoo_spec("relu", side=16),
    "cnn-tanh": NetSpec("cnn", (1, 16, 16), (8, 6), 10, "tanh", padding=1),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _close(x: torch.Tensor, y: torch.Tensor, tol: float) -> None:
    torch.testing.assert_close(x, y, atol=tol, rtol=tol)


# --------------------------------------------------------------------------- group helpers


@pytest.mark.parametrize("name", ["mlp-relu", "cnn-tanh"])
def test_compose_and_inverse_act_like_the_group(name):
    spec = SPECS[name]
    theta = init_params(spec, 3, seed=1)
    g1 = random_transform(spec, "both", (3,), _gen(1))
    g2 = random_transform(spec, "both", (3,), _gen(2))
    twice = transform(spec, transform(spec, theta, g1), g2)
    _close(transform(spec, theta, compose(spec, g1, g2)), twice, 1e-5)
    _close(transform(spec, transform(spec, theta, g1), inverse(spec, g1)), theta, 1e-5)
    ident = compose(spec, g1, inverse(spec, g1))
    for perm, scale in zip(ident.perms, ident.scales, strict=True):
        assert torch.equal(perm, torch.arange(perm.shape[-1]).expand_as(perm))
        _close(scale, torch.ones_like(scale), 1e-6)
    with pytest.raises(ValueError, match="hidden layers"):
        compose(spec, g1, Transform(g2.perms[:1], g2.scales[:1]))


# --------------------------------------------------------------------------- weight matching


@pytest.mark.parametrize("name", list(SPECS))
def test_rebasin_recovers_a_planted_permutation_exactly(name):
    spec = SPECS[name]
    a = init_params(spec, 1, seed=2)[0]
    b = transform(spec, a, random_transform(spec, "permutation", generator=_gen(3)))
    assert not torch.allclose(a, b)
    g = weight_matching(spec, a, b, generator=_gen(4))
    _close(transform(spec, b, g), a, 1e-6)


@pytest.mark.parametrize("name", ["mlp-tanh", "cnn-tanh"])
def test_rebasin_with_scaling_recovers_a_planted_permutation_and_sign_flip_on_tanh(name):
    spec = SPECS[name]
    a = init_params(spec, 1, seed=5)[0]
    b = transform(spec, a, random_transform(spec, "both", generator=_gen(6)))
    g = weight_matching(spec, a, b, scaling=True, generator=_gen(7))
    _close(transform(spec, b, g), a, 1e-6)
    assert any((s < 0).any() for s in g.scales)
    # without signs the best permutation cannot undo the flips
    plain = weight_matching(spec, a, b, generator=_gen(7))
    assert not torch.allclose(transform(spec, b, plain), a, atol=1e-3)


@pytest.mark.parametrize("name", ["mlp-relu", "cnn-relu"])
def test_rebasin_with_scaling_maps_a_planted_relu_orbit_element_onto_the_normalised_a(name):
    spec = SPECS[name]
    a = init_params(spec, 1, seed=8)[0]
    b = transform(spec, a, random_transform(spec, "both", generator=_gen(9)))
    a_n, b_aligned = align_pair(spec, a, b, "rebasin_scaling", generator=_gen(10))
    _close(a_n, transform(spec, a, normalizing_transform(spec, a)), 1e-6)
    _close(b_aligned, a_n, 1e-5)
    for w, bias in unflatten(spec, a_n)[:-1]:  # every hidden unit has a unit incoming vector
        incoming = torch.cat([w.reshape(w.shape[0], -1), bias[:, None]], dim=1)
        _close(incoming.norm(dim=1), torch.ones(w.shape[0]), 1e-5)


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("scaling", [False, True])
def test_rebasin_never_increases_the_distance_it_minimises(name, scaling):
    spec = SPECS[name]
    a, b = init_params(spec, 2, seed=11)
    history: list[float] = []
    g = weight_matching(spec, a, b, scaling=scaling, generator=_gen(12), history=history)
    assert len(history) >= 2
    diffs = torch.tensor(history).diff()
    assert (diffs >= -1e-9).all(), history
    assert history[-1] > history[0]  # independent networks: matching always finds something better
    aligned = transform(spec, b, g)
    if scaling and spec.activation == "relu":  # g maps b onto the normalised a: compare the normalised pair
        a = transform(spec, a, normalizing_transform(spec, a))
        b = transform(spec, b, normalizing_transform(spec, b))
    assert (a - aligned).norm() < (a - b).norm()


def test_rebasin_stops_after_max_sweeps_and_respects_the_seed():
    spec = SPECS["mlp-tanh"]
    a, b = init_params(spec, 2, seed=13)
    history: list[float] = []
    weight_matching(spec, a, b, max_sweeps=1, history=history)
    assert len(history) == 2
    g1 = weight_matching(spec, a, b, generator=_gen(1))
    g2 = weight_matching(spec, a, b, generator=_gen(1))
    assert all(torch.equal(p, q) for p, q in zip(g1.perms, g2.perms, strict=True))
    with pytest.raises(ValueError, match="theta_b"):
        weight_matching(spec, a, b[:-1])


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("method", ["naive", "rebasin", "rebasin_scaling", "canonical"])
def test_alignment_keeps_both_functions(name, method):
    spec = SPECS[name]
    a, b = init_params(spec, 2, seed=14)
    x = torch.randn(6, *spec.input_shape, generator=_gen(15))
    a2, b2 = align_pair(spec, a, b, method, generator=_gen(16))
    _close(forward(spec, a2, x), forward(spec, a, x), 1e-4)
    _close(forward(spec, b2, x), forward(spec, b, x), 1e-4)
    if method == "rebasin" or (method == "rebasin_scaling" and spec.activation == "tanh"):
        assert torch.equal(a2, a)


def test_align_pair_rejects_an_unknown_method():
    spec = SPECS["mlp-relu"]
    a, b = init_params(spec, 2)
    with pytest.raises(ValueError, match="'zipit'"):
        align_pair(spec, a, b, "zipit")


# --------------------------------------------------------------------------- canonical form


@pytest.mark.parametrize("name", list(SPECS))
def test_canonical_form_is_constant_on_orbits_and_keeps_the_function(name):
    spec = SPECS[name]
    theta = init_params(spec, 3, seed=17)
    g = random_transform(spec, "both", (3,), _gen(18))
    moved = transform(spec, theta, g)
    canon = canonical_form(spec, theta)
    _close(canonical_form(spec, moved), canon, 1e-5)
    x = torch.randn(5, *spec.input_shape, generator=_gen(19))
    _close(batched_forward(spec, canon, x), batched_forward(spec, theta, x), 1e-4)
    # idempotent, and the batched form equals the per-network one
    _close(canonical_form(spec, canon), canon, 1e-5)
    _close(canonical_form(spec, theta[1]), canon[1], 1e-6)


@pytest.mark.parametrize("name", ["mlp-relu", "mlp-tanh"])
def test_canonical_form_fixes_the_normalisation_and_order(name):
    spec = SPECS[name]
    canon = canonical_form(spec, init_params(spec, 2, seed=20))
    layers = unflatten(spec, canon)
    for layer in range(len(spec.widths)):
        w, b = layers[layer]
        out_norm = layers[layer + 1][0].norm(dim=-2)
        assert (out_norm.diff(dim=-1) <= 0).all()
        if spec.activation == "relu":
            _close(torch.cat([w, b[..., None]], -1).norm(dim=-1), torch.ones_like(b), 1e-5)
        else:
            assert (b > 0).all()


def test_canonical_form_tanh_tie_rule_uses_the_incoming_sum_when_the_bias_is_zero():
    spec = SPECS["mlp-tanh"]
    theta = init_params(spec, 1, seed=21)[0]
    layers = spec.tensor(0, "bias")
    theta[layers.offset : layers.stop] = 0.0
    g = canonical_transform(spec, theta)
    canon = transform(spec, theta, g)
    w0 = unflatten(spec, canon)[0][0]
    assert (w0.sum(-1) > 0).all()
    flipped = transform(spec, theta, random_transform(spec, "both", generator=_gen(22)))
    _close(canonical_form(spec, flipped), canon, 1e-5)


@pytest.mark.parametrize("name", list(SPECS))
def test_canonical_forms_of_different_networks_differ(name):
    spec = SPECS[name]
    theta = init_params(spec, 2, seed=23)
    canon = canonical_form(spec, theta)
    assert (canon[0] - canon[1]).abs().max() > 1e-2
    # also for a network and a near copy outside the orbit (one weight nudged)
    nudged = theta[0].clone()
    nudged[0] += 0.1
    assert (canonical_form(spec, nudged) - canon[0]).abs().max() > 1e-3


def test_canonical_form_rejects_a_wrong_parameter_count():
    spec = SPECS["cnn-tanh"]
    with pytest.raises(ValueError, match=f"{spec.num_params}"):
        canonical_form(spec, torch.zeros(2, spec.num_params + 1))
