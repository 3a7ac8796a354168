"""models layer: NG-GNN and ScaleGMN invariances (and their absence), equivariance, the autoencoder."""

import json

import pytest
import torch

from symzoo import config
from symzoo.graph.neural_graph import GraphStructure, to_batch
from symzoo.graph.stats import normalize
from symzoo.models.autoencoder import Architecture, Autoencoder, Decoder, build_autoencoder
from symzoo.models.scalegmn import Invariant, ScaleGMN
from symzoo.nets.functional import batched_forward
from symzoo.nets.symmetry import random_transform, transform
from tests.test_nets import SPECS, init_params

SMALL = {"hidden": 32, "layers": 2, "latent": 16, "dropout": 0.2}
ATOL = 1e-4


def arch(kind: str, **keys) -> Architecture:
    """A small architecture; every key not given at its schema default."""
    return Architecture.from_options(config.entry("encoder", kind=kind, **(SMALL | keys)))


def small_model(name: str, kind: str, seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    spec = SPECS[name]
    return build_autoencoder(spec, arch(kind), thetas_train=init_params(spec, 16, seed=100)).eval()


def latent_change(name: str, kind: str, group: str, n: int = 4) -> float:
    """Max |latent(theta) - latent(g . theta)| over n random networks and group elements."""
    model, spec = small_model(name, kind), SPECS[name]
    thetas = init_params(spec, n, seed=1)
    g = random_transform(spec, group, batch=(n,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return (model.encode(thetas) - model.encode(transform(spec, thetas, g))).abs().max().item()


@pytest.mark.parametrize("kind", ["ngnn", "scalegmn"])
@pytest.mark.parametrize("name", SPECS)
def test_latents_are_permutation_invariant(name, kind):
    assert latent_change(name, kind, "permutation") < ATOL


@pytest.mark.parametrize("group", ["scaling", "both"])
@pytest.mark.parametrize("name", SPECS)
def test_scalegmn_latents_are_scale_invariant(name, group):
    """Sign flips for the tanh networks, positive scalings in [1/e, e] for the ReLU ones (and with permutations)."""
    assert latent_change(name, "scalegmn", group) < ATOL


@pytest.mark.parametrize("name", ["mlp-tanh", "cnn-tanh"])
def test_ngnn_latents_change_under_sign_flips(name):
    assert latent_change(name, "ngnn", "scaling") > 1e-3


@pytest.mark.parametrize("name", ["mlp-relu", "cnn-relu"])
def test_symmetry_broken_scalegmn_changes_under_positive_scaling(name):
    assert latent_change(name, "scalegmn_broken", "scaling") > 1e-3
    assert latent_change(name, "scalegmn_broken", "permutation") < ATOL  # still a permutation-invariant GNN


@pytest.mark.parametrize("name", SPECS)
def test_scalegmn_hidden_states_are_equivariant(name):
    """After the first layer, hidden node i of g . theta has the state q_i * h[perm[i]] of theta."""
    model, spec = small_model(name, "scalegmn"), SPECS[name]
    thetas = init_params(spec, 2, seed=1)
    g = random_transform(spec, "both", batch=(2,), generator=torch.Generator().manual_seed(2))
    structure = model.structure

    def states(t: torch.Tensor) -> torch.Tensor:
        batch = normalize(to_batch(structure, t), model.stats, center=False)
        return model.encoder.node_states(batch)[1].view(2, structure.num_nodes, -1)

    with torch.no_grad():
        h, h_g = states(thetas), states(transform(spec, thetas, g))
    for layer, (perm, scale) in enumerate(zip(g.perms, g.scales), start=1):
        nodes = structure.layer_nodes(layer)
        expected = scale[..., None] * torch.take_along_dim(h[:, nodes], perm[..., None], dim=1)
        torch.testing.assert_close(h_g[:, nodes], expected, rtol=1e-4, atol=ATOL)
        assert not torch.allclose(h_g[:, nodes], h[:, nodes], atol=1e-3)  # states really move with g
    last = structure.layer_nodes(structure.num_layers - 1)
    torch.testing.assert_close(h_g[:, last], h[:, last], rtol=1e-4, atol=ATOL)  # output nodes: q = 1


def test_positive_invariant_is_safe_at_zero():
    inv = Invariant(4, "positive")
    z = torch.zeros(3, 4, requires_grad=True)
    out = inv(z)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(3, 4)) and torch.isfinite(z.grad).all()
    v = torch.randn(5, 4)
    torch.testing.assert_close(inv(v * 7.3), inv(v))
    sign = Invariant(4, "sign")
    torch.testing.assert_close(sign(-v), sign(v))
    assert torch.equal(Invariant(4, "positive", broken=True)(v), v)


def test_scalegmn_rejects_reverse_edges():
    with pytest.raises(ValueError, match="forward edges"):
        ScaleGMN(
            GraphStructure.from_spec(SPECS["mlp-relu"], reverse_edges=True),
            hidden=8,
            layers=1,
            latent=4,
            dropout=0.0,
            message="mlp",
            dense=True,
        )


@pytest.mark.parametrize("kind", ["ngnn", "scalegmn", "scalegmn_broken"])
@pytest.mark.parametrize("name", ["mlp-tanh", "cnn-relu"])
def test_autoencoder_decodes_runnable_networks_and_trains_end_to_end(name, kind):
    spec = SPECS[name]
    model = small_model(name, kind).train()
    thetas = init_params(spec, 3, seed=1)
    out = model(thetas)
    assert out.shape == (3, spec.num_params) and torch.isfinite(out).all()
    logits = batched_forward(spec, out, torch.randn(5, *spec.input_shape))
    assert logits.shape == (3, 5, spec.num_classes)
    logits.square().mean().backward()
    for part in (model.encoder, model.decoder):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads), "every parameter takes part"
        assert sum(g.abs().sum() for g in grads) > 0


def test_decoder_outputs_raw_or_destandardised_parameters():
    spec = SPECS["mlp-tanh"]
    scale, shift = torch.rand(spec.num_params) + 0.5, torch.randn(spec.num_params)
    raw = Decoder(spec, 8, (2, 4), "raw")
    zoo = Decoder(spec, 8, (2, 4), "zoo", scale=scale, shift=shift)
    zoo.net.load_state_dict(raw.net.state_dict())
    z = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(zoo(z), shift + scale * raw(z))
    assert [m.out_features for m in raw.net if isinstance(m, torch.nn.Linear)] == [16, 32, spec.num_params]
    with pytest.raises(ValueError, match="decoder output"):
        Decoder(spec, 8, (2,), "clamped")


VARIANTS = [
    ("ngnn", {}),
    ("ngnn", {"readout": "outputs"}),
    ("scalegmn", {"message": "bilinear"}),
    ("scalegmn", {"message": "mlp"}),
    ("scalegmn_broken", {"message": "mlp"}),
]


@pytest.mark.parametrize(("kind", "options"), VARIANTS)
@pytest.mark.parametrize("name", SPECS)
def test_dense_and_pyg_message_passing_compute_the_same_function(name, kind, options):
    """The dense bipartite path and torch-geometric's gathers/scatters: same latents, same gradients."""
    spec = SPECS[name]
    thetas = init_params(spec, 3, seed=1)
    models = []
    for path in ("dense", "pyg"):
        torch.manual_seed(0)
        model = build_autoencoder(spec, arch(kind, **options, message_passing=path), thetas_train=thetas).eval()
        model.encode(thetas).square().sum().backward()
        models.append(model)
    dense, pyg = models
    with torch.no_grad():
        torch.testing.assert_close(dense.encode(thetas), pyg.encode(thetas), rtol=1e-5, atol=1e-5)
    for (name_, p), q in zip(dense.named_parameters(), pyg.parameters()):
        if p.grad is not None or q.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name_)


@pytest.mark.parametrize("kind", ["ngnn", "scalegmn_broken"])
def test_config_round_trips_with_the_state_dict(kind):
    model = small_model("cnn-tanh", kind)
    config = json.loads(json.dumps(model.config()))
    again = Autoencoder.from_config(config, model.state_dict()).eval()
    thetas = init_params(SPECS["cnn-tanh"], 2, seed=1)
    with torch.no_grad():
        assert torch.equal(again(thetas), model(thetas))
    assert config["kind"] == kind and config["hidden"] == SMALL["hidden"]
    with pytest.raises(ValueError, match="kind"):
        Architecture(**(arch("ngnn").to_dict() | {"kind": "transformer"}))


def test_the_sign_invariant_is_rho_of_z_plus_rho_of_minus_z():
    """Computed with one product per layer of rho (half the work), it is still rho(z) + rho(-z), with gradients."""
    torch.manual_seed(0)
    inv = Invariant(6, "sign")
    z = torch.randn(4, 6, requires_grad=True)
    fast = inv(z)
    direct = inv.rho(z) + inv.rho(-z)
    torch.testing.assert_close(fast, direct)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), z)
    (g_direct,) = torch.autograd.grad(direct.square().sum(), z)
    torch.testing.assert_close(g_fast, g_direct)
