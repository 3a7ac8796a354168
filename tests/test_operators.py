"""models layer: equivariant weight-space operators (ScaleGMN-B, its symmetry-broken twin, NG-GNN) and the
single-shot fine-tuner built on them: equivariance on random group elements, the functions the tuned networks
compute, the residual update at gamma = 0 and 0.01, the dense and torch-geometric paths, save and load."""

from __future__ import annotations

import pytest
import torch

from symzoo.models.operators import Finetuner, OperatorArch, build_operator
from symzoo.models.saved import load_model, save_model
from symzoo.nets.functional import batched_forward
from symzoo.nets.symmetry import random_transform, transform
from tests.test_nets import SPECS, init_params

LOG_SCALE = 3.0
"""Positive scalings up to e^±3, as the issue asks."""


def operator(name: str, kind: str, seed: int = 0, **keys) -> torch.nn.Module:
    torch.manual_seed(seed)
    spec = SPECS[name]
    arch = OperatorArch(kind, hidden=16, layers=2, **keys)
    return build_operator(spec, arch, init_params(spec, 16, seed=100)).eval()


def relative_change(name: str, kind: str, group: str, n: int = 3) -> float:
    """max |op(g · θ) - g · op(θ)| / max |g · op(θ)| over n networks and random elements of ``group``."""
    spec, op = SPECS[name], operator(name, kind)
    thetas = init_params(spec, n, seed=1)
    g = random_transform(spec, group, (n,), torch.Generator().manual_seed(2), max_log_scale=LOG_SCALE)
    with torch.no_grad():
        moved = op(transform(spec, thetas, g))
        expected = transform(spec, op(thetas), g)
    return ((moved - expected).abs().max() / expected.abs().max()).item()


TOL = 1e-4


@pytest.mark.parametrize("group", ["permutation", "scaling", "both"])
@pytest.mark.parametrize("name", SPECS)
def test_scalegmn_operator_is_equivariant_to_the_whole_group(name, group):
    """Permutations, and sign flips (tanh) or positive scalings up to e^±3 (ReLU), for MLPs and CNNs."""
    assert relative_change(name, "scalegmn", group) < TOL


@pytest.mark.parametrize("name", SPECS)
def test_the_broken_twin_and_ngnn_are_equivariant_to_permutations_only(name):
    for kind in ("scalegmn_broken", "ngnn"):
        assert relative_change(name, kind, "permutation") < TOL
        assert relative_change(name, kind, "scaling") > 1e-2, f"{kind} should not commute with scalings"


@pytest.mark.parametrize("name", SPECS)
def test_tuned_networks_compute_the_same_function_from_any_point_of_the_orbit(name):
    """T(g · θ) = g · T(θ), so T(g · θ) and T(θ) are one function: their logits agree on random inputs."""
    spec = SPECS[name]
    tuner = Finetuner(operator(name, "scalegmn"), gamma=0.5).eval()
    thetas = init_params(spec, 3, seed=1)
    g = random_transform(spec, "both", (3,), torch.Generator().manual_seed(3), max_log_scale=LOG_SCALE)
    x = torch.randn(7, *spec.input_shape)
    with torch.no_grad():
        tuned, tuned_moved = tuner(thetas), tuner(transform(spec, thetas, g))
        logits, logits_moved = batched_forward(spec, tuned, x), batched_forward(spec, tuned_moved, x)
    assert not torch.allclose(tuned, thetas, atol=1e-3), "the operator changes the networks"
    torch.testing.assert_close(logits_moved, logits, rtol=1e-3, atol=1e-3 * logits.abs().max().item())


@pytest.mark.parametrize("name", ["mlp-tanh", "cnn-relu"])
def test_residual_update_is_the_identity_at_gamma_0_and_close_at_gamma_001(name):
    spec = SPECS[name]
    thetas = init_params(spec, 4, seed=1)
    with torch.no_grad():
        assert torch.equal(Finetuner(operator(name, "scalegmn"), gamma=0.0)(thetas), thetas)
        tuned = Finetuner(operator(name, "scalegmn"), gamma=0.01)(thetas)
    change = ((tuned - thetas).norm(dim=1) / thetas.norm(dim=1)).max().item()
    assert 0 < change < 0.05


@pytest.mark.parametrize("kind", ["scalegmn", "ngnn"])
@pytest.mark.parametrize("name", ["mlp-relu", "cnn-tanh"])
def test_dense_and_torch_geometric_message_passing_agree(name, kind):
    spec = SPECS[name]
    dense, sparse = operator(name, kind), operator(name, kind, message_passing="pyg")
    sparse.load_state_dict(dense.state_dict())
    thetas = init_params(spec, 3, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(sparse(thetas), dense(thetas), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["scalegmn", "scalegmn_broken", "ngnn"])
def test_a_context_conditions_the_output_and_keeps_equivariance(kind):
    """An invariant context (a flow's time embedding) changes the output; ScaleGMN-B stays equivariant with it."""
    name = "mlp-relu"
    spec, op = SPECS[name], operator(name, kind, context=4)
    thetas = init_params(spec, 2, seed=1)
    c0, c1 = torch.zeros(2, 4), torch.ones(2, 4)
    with torch.no_grad():
        assert (op(thetas, c0) - op(thetas, c1)).abs().max() > 1e-4
        if kind == "scalegmn":
            g = random_transform(spec, "both", (2,), torch.Generator().manual_seed(2), max_log_scale=LOG_SCALE)
            expected = transform(spec, op(thetas, c1), g)
            assert ((op(transform(spec, thetas, g), c1) - expected).abs().max() / expected.abs().max()) < TOL
    with pytest.raises(ValueError, match="context"):
        op(thetas)


def test_every_parameter_learns():
    spec = SPECS["cnn-relu"]
    tuner = Finetuner(operator("cnn-relu", "scalegmn"), gamma=0.01).train()
    out = tuner(init_params(spec, 2, seed=1))
    batched_forward(spec, out, torch.randn(3, *spec.input_shape)).square().mean().backward()
    missing = [n for n, p in tuner.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without a gradient: {missing}"


@pytest.mark.parametrize("group", ["positive", "sign"])
def test_the_pair_projection_is_invariant_and_is_a_linear_map_of_the_pair_invariant(group):
    """Scaling a_ji and h_i by the same q_i (positive, or a sign) leaves the projection unchanged; it equals the
    linear map of the concatenated invariant features it is split from; a zero pair is safe."""
    from symzoo.graph.dense import SparseGraph
    from symzoo.models.operators import PairProjection

    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2, 0], [3, 3, 4, 4]])  # edges j -> i into nodes 3 and 4
    graph, proj = SparseGraph(edge_index, 5), PairProjection(4, group)
    h, a = torch.randn(5, 4), torch.randn(4, 4)
    q = torch.rand(5, 1) * 10 + 0.1 if group == "positive" else torch.where(torch.rand(5, 1) < 0.5, -1.0, 1.0)
    torch.testing.assert_close(proj(q[edge_index[1]] * a, q * h, graph), proj(a, h, graph), rtol=1e-5, atol=1e-5)
    hi = h[edge_index[1]]
    if group == "sign":
        features = torch.cat([a * hi, a.abs(), hi.abs()], 1)
        weight = torch.cat([proj.edge.weight, proj.magnitude.weight, proj.node.weight], 1)
    else:
        z = torch.cat([a, hi], 1)
        features, weight = z / z.norm(dim=1, keepdim=True), torch.cat([proj.edge.weight, proj.node.weight], 1)
    torch.testing.assert_close(proj(a, h, graph), features @ weight.T + proj.edge.bias, rtol=1e-5, atol=1e-5)
    zero_a, zero_h = torch.zeros(4, 4, requires_grad=True), torch.zeros(5, 4, requires_grad=True)
    proj(zero_a, zero_h, graph).sum().backward()
    assert torch.isfinite(zero_a.grad).all() and torch.isfinite(zero_h.grad).all()


def test_a_saved_finetuner_loads_to_the_same_function(tmp_path):
    spec = SPECS["mlp-tanh"]
    tuner = Finetuner(operator("mlp-tanh", "scalegmn"), gamma=0.3).eval()
    path = tmp_path / "model.pt"
    save_model(path, tuner, tuner.state_dict(), epoch=3)
    loaded = load_model(path, Finetuner)
    thetas = init_params(spec, 2, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(thetas), tuner(thetas))
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="model.pt: not a saved finetuner"):
        load_model(path, Finetuner)


def test_bad_architectures_are_named():
    with pytest.raises(ValueError, match="operator kind"):
        OperatorArch("gcn", 8, 1)
    with pytest.raises(ValueError, match="message_passing"):
        OperatorArch("scalegmn", 8, 1, message_passing="sparse")
