"""nets layer: spec and layout, the functional forward, symmetry actions preserve the function."""

import math

import pytest
import torch
from torch import nn

from symzoo.nets.functional import batched_forward, evaluate, flatten, forward, unflatten
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec
from symzoo.nets.symmetry import Transform, random_transform, transform

SPECS = {
    "mlp-tanh": NetSpec("mlp", (1, 8, 8), (48, 32, 16), 10, "tanh"),
    "mlp-relu": NetSpec("mlp", (1, 8, 8), (24, 12), 10, "relu"),
    "cnn-relu": small_cnn_zoo_spec("relu"),
    "cnn-tanh": NetSpec("cnn", (1, 16, 16), (8, 6), 10, "tanh", padding=1),
}


def init_params(spec: NetSpec, n: int, seed: int = 0) -> torch.Tensor:
    """He-style random parameters (so logits are O(1) and float error stays small)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.empty(n, spec.num_params)
    for t in spec.layout:
        fan_in = math.prod(t.shape[1:]) if len(t.shape) > 1 else 1
        theta[:, t.offset : t.stop] = torch.randn(n, t.size, generator=g) * math.sqrt(2 / fan_in)
    return theta


def torch_reference(spec: NetSpec, theta: torch.Tensor) -> nn.Module:
    """The same network built from torch.nn modules, loaded through the layout's names."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[spec.activation]
    mods: list[nn.Module] = [] if spec.kind == "cnn" else [nn.Flatten()]
    for i in range(spec.num_layers - 1):
        n_in, n_out = spec.sizes[i], spec.sizes[i + 1]
        layer = (
            nn.Conv2d(n_in, n_out, spec.kernel_size, spec.stride, spec.padding)
            if spec.is_conv(i)
            else nn.Linear(n_in, n_out)
        )
        mods += [layer, act()]
    if spec.kind == "cnn":
        mods.append(nn.AdaptiveAvgPool2d(1))
        mods.append(nn.Flatten())
    mods.append(nn.Linear(spec.sizes[-2], spec.sizes[-1]))
    net = nn.Sequential(*mods)
    layers = [m for m in net if isinstance(m, nn.Conv2d | nn.Linear)]
    for p, t in zip([p for layer in layers for p in (layer.weight, layer.bias)], spec.layout, strict=True):
        p.data.copy_(theta[t.offset : t.stop].view(t.shape))
    return net


def test_small_cnn_zoo_spec_matches_the_paper():
    spec = small_cnn_zoo_spec()
    assert spec.num_params == 4970
    assert spec.sizes == (1, 16, 16, 16, 10)
    assert [s[1:] for s in spec.hidden_shapes()] == [(15, 15), (7, 7), (3, 3)]
    assert NetSpec("mlp", (1, 8, 8), (48, 32, 16), 10, "tanh").num_params == 5386


def test_layout_is_contiguous_and_round_trips_through_dict():
    for spec in SPECS.values():
        offsets = [t.offset for t in spec.layout]
        assert offsets[0] == 0 and all(a.stop == b.offset for a, b in zip(spec.layout, spec.layout[1:]))
        assert NetSpec.from_dict(spec.to_dict()) == spec
    bad = SPECS["mlp-tanh"].to_dict()
    bad["layout"][1]["offset"] += 1
    with pytest.raises(ValueError, match="layout"):
        NetSpec.from_dict(bad)


@pytest.mark.parametrize("bad", [{"kind": "rnn"}, {"activation": "gelu"}, {"widths": ()}, {"input_shape": (1, 3, 3)}])
def test_bad_specs_are_rejected_by_name(bad):
    fields = {"kind": "cnn", "input_shape": (1, 8, 8), "widths": (4, 4), "num_classes": 10} | bad
    with pytest.raises(ValueError, match="spec"):
        NetSpec(**fields)


@pytest.mark.parametrize("name", SPECS)
def test_forward_equals_torch_nn_and_vmap_equals_loop(name):
    spec = SPECS[name]
    theta = init_params(spec, 4)
    x = torch.randn(5, *spec.input_shape)
    loop = torch.stack([forward(spec, t, x) for t in theta])
    torch.testing.assert_close(batched_forward(spec, theta, x), loop, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(torch_reference(spec, theta[1])(x), loop[1], atol=1e-5, rtol=1e-5)
    assert torch.equal(flatten(unflatten(spec, theta)), theta)


def test_forward_rejects_a_wrong_parameter_count():
    spec = SPECS["mlp-relu"]
    with pytest.raises(ValueError, match=f"expected {spec.num_params} parameters"):
        forward(spec, torch.zeros(spec.num_params + 1), torch.zeros(2, *spec.input_shape))


def test_dropout_masks_multiply_hidden_activations():
    spec = SPECS["mlp-relu"]
    theta, x = init_params(spec, 1)[0], torch.randn(3, *spec.input_shape)
    ones = [torch.ones(3, *s) for s in spec.hidden_shapes()]
    torch.testing.assert_close(forward(spec, theta, x, ones), forward(spec, theta, x))
    zeros = [torch.zeros(3, *s) for s in spec.hidden_shapes()]
    expected = unflatten(spec, theta)[-1][1].expand(3, -1)  # only the last bias survives
    torch.testing.assert_close(forward(spec, theta, x, zeros), expected)


def test_evaluate_matches_a_direct_computation():
    spec = SPECS["cnn-tanh"]
    theta, x = init_params(spec, 3), torch.randn(50, *spec.input_shape)
    y = torch.randint(0, 10, (50,))
    loss, acc = evaluate(spec, theta, x, y, batch_size=16, models_per_pass=2)
    for m in range(3):
        logits = forward(spec, theta[m], x)
        torch.testing.assert_close(loss[m], torch.nn.functional.cross_entropy(logits, y), atol=1e-5, rtol=1e-5)
        assert acc[m] == pytest.approx((logits.argmax(1) == y).float().mean().item())


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("kind", ["permutation", "scaling", "both"])
def test_group_actions_preserve_every_logit(name, kind):
    spec = SPECS[name]
    g = torch.Generator().manual_seed(1)
    theta, x = init_params(spec, 6), torch.randn(16, *spec.input_shape, generator=g)
    moved = transform(spec, theta, random_transform(spec, kind, (6,), generator=g))
    assert (moved - theta).abs().max() > 0.1  # the parameters really moved
    torch.testing.assert_close(batched_forward(spec, moved, x), batched_forward(spec, theta, x), atol=1e-5, rtol=1e-5)
    # one shared element applied to one network (no batch dims) acts the same way
    single = transform(spec, theta[0], random_transform(spec, kind, generator=g))
    torch.testing.assert_close(forward(spec, single, x), forward(spec, theta[0], x), atol=1e-5, rtol=1e-5)


def test_identity_is_neutral_and_actions_compose_with_their_inverse():
    spec = SPECS["cnn-relu"]
    theta = init_params(spec, 2)
    assert torch.equal(transform(spec, theta, Transform.identity(spec, (2,))), theta)
    g = random_transform(spec, "both", (2,), generator=torch.Generator().manual_seed(3))
    inv_perms = tuple(p.argsort(-1) for p in g.perms)
    inverse = Transform(inv_perms, tuple(1 / torch.take_along_dim(s, ip, -1) for s, ip in zip(g.scales, inv_perms)))
    torch.testing.assert_close(transform(spec, transform(spec, theta, g), inverse), theta)


@pytest.mark.parametrize("name", ["mlp-relu", "cnn-relu"])
def test_sign_flip_on_relu_changes_the_function(name):
    spec = SPECS[name]
    theta, x = init_params(spec, 1)[0], torch.randn(32, *spec.input_shape)
    flip = Transform.identity(spec)
    flip = Transform(flip.perms, tuple(-s for s in flip.scales))
    assert (forward(spec, transform(spec, theta, flip), x) - forward(spec, theta, x)).abs().max() > 1e-2


def test_positive_scaling_on_tanh_changes_the_function():
    spec = SPECS["mlp-tanh"]
    theta, x = init_params(spec, 1)[0], torch.randn(32, *spec.input_shape)
    ident = Transform.identity(spec)
    scale = Transform(ident.perms, tuple(torch.full_like(s, 2.0) for s in ident.scales))
    assert (forward(spec, transform(spec, theta, scale), x) - forward(spec, theta, x)).abs().max() > 1e-2
