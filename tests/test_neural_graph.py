"""graph layer: networks as neural graphs, batching by indexing, round trips, per-layer statistics."""

import pytest
import torch

from symzoo.graph.neural_graph import GraphStructure, to_batch, to_params
from symzoo.graph.stats import LayerStats, normalize
from symzoo.nets.functional import unflatten
from symzoo.nets.spec import NetSpec, small_cnn_zoo_spec
from tests.test_nets import SPECS, init_params

TINY_MLP = NetSpec("mlp", (1, 2, 2), (3, 2), 2, "tanh")


def test_small_cnn_zoo_graph_has_the_papers_size():
    structure = GraphStructure.from_spec(small_cnn_zoo_spec())
    assert (structure.num_nodes, structure.num_edges, structure.edge_dim) == (59, 688, 9)
    both = GraphStructure.from_spec(small_cnn_zoo_spec(), reverse_edges=True)
    assert both.num_edges == 2 * 688 and both.num_forward_edges == 688
    assert torch.equal(both.edge_dir, torch.cat([torch.zeros(688), torch.ones(688)]).long())
    assert torch.equal(both.edge_index[:, 688:], both.edge_index[:, :688].flip(0))


def test_mlp_graph_has_a_node_per_neuron_and_an_edge_per_weight():
    spec = TINY_MLP
    structure = GraphStructure.from_spec(spec)
    assert structure.num_nodes == sum(spec.sizes) == 4 + 3 + 2 + 2
    assert structure.num_edges == 4 * 3 + 3 * 2 + 2 * 2 and structure.edge_dim == 1
    theta = init_params(spec, 1)[0]
    batch = to_batch(structure, theta[None])
    starts = structure.layer_start
    assert torch.equal(batch.x[: spec.sizes[0], 0], torch.zeros(spec.sizes[0]))
    edges = {(int(s), int(d)): float(a) for (s, d), a in zip(batch.edge_index.T, batch.edge_attr[:, 0])}
    for layer, (w, b) in enumerate(unflatten(spec, theta)):
        assert torch.equal(batch.x[starts[layer + 1] : starts[layer + 2], 0], b)
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                assert edges[(starts[layer] + j, starts[layer + 1] + i)] == float(w[i, j])


def test_cnn_edges_carry_kernels_and_dense_weights_sit_in_one_slot():
    spec = SPECS["cnn-tanh"]
    structure = GraphStructure.from_spec(spec)
    theta = init_params(spec, 1)[0]
    batch = to_batch(structure, theta[None])
    layers = unflatten(spec, theta)
    starts = structure.layer_start
    lookup = {(int(s), int(d)): a for (s, d), a in zip(batch.edge_index.T, batch.edge_attr)}
    w0 = layers[0][0]  # conv (out, in, 3, 3)
    assert torch.equal(lookup[(starts[0] + 0, starts[1] + 5)], w0[5, 0].flatten())
    w_last = layers[-1][0]  # dense (classes, channels)
    feature = lookup[(starts[2] + 3, starts[3] + 7)]
    assert feature[structure.dense_slot] == w_last[7, 3]
    assert torch.count_nonzero(torch.cat([feature[: structure.dense_slot], feature[structure.dense_slot + 1 :]])) == 0


@pytest.mark.parametrize("name", SPECS)
def test_index_maps_cover_every_parameter_once(name):
    structure = GraphStructure.from_spec(SPECS[name])
    used = torch.cat([structure.bias_index, structure.weight_index.flatten()])
    used = used[used >= 0]
    assert torch.equal(
        torch.bincount(used, minlength=SPECS[name].num_params), torch.ones(SPECS[name].num_params).long()
    )


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", SPECS)
def test_graph_params_graph_round_trips_exactly(name, reverse):
    spec = SPECS[name]
    structure = GraphStructure.from_spec(spec, reverse_edges=reverse)
    thetas = init_params(spec, 3)
    batch = to_batch(structure, thetas)
    assert torch.equal(to_params(structure, batch), thetas)
    again = to_batch(structure, to_params(structure, batch))
    assert torch.equal(again.x, batch.x) and torch.equal(again.edge_attr, batch.edge_attr)


def test_node_types_and_layers():
    spec = TINY_MLP  # sizes (4, 3, 2, 2)
    structure = GraphStructure.from_spec(spec)
    assert structure.node_layer.tolist() == [0] * 4 + [1] * 3 + [2] * 2 + [3] * 2
    assert structure.node_type.tolist() == [0, 1, 2, 3, 4, 4, 4, 5, 5, 6, 7]
    assert structure.num_node_types == 8
    cnn = GraphStructure.from_spec(small_cnn_zoo_spec())
    assert cnn.node_type.tolist() == [0] + [1] * 16 + [2] * 16 + [3] * 16 + list(range(4, 14))
    assert cnn.edge_layer.tolist() == [0] * 16 + [1] * 256 + [2] * 256 + [3] * 160


def test_batch_offsets_and_per_graph_views():
    spec = SPECS["cnn-relu"]
    structure = GraphStructure.from_spec(spec)
    thetas = init_params(spec, 3)
    batch = to_batch(structure, thetas)
    n, e = structure.num_nodes, structure.num_edges
    assert batch.num_graphs == 3 and batch.num_nodes == 3 * n and batch.edge_index.shape == (2, 3 * e)
    assert torch.equal(batch.ptr, torch.tensor([0, n, 2 * n, 3 * n]))
    assert torch.equal(batch.batch, torch.arange(3).repeat_interleave(n))
    for b in range(3):
        assert torch.equal(batch.edge_index[:, b * e : (b + 1) * e], structure.edge_index + b * n)
        single, alone = batch[b], to_batch(structure, thetas[b : b + 1])
        for key in ("x", "edge_attr", "edge_index", "node_type", "node_layer", "edge_layer"):
            assert torch.equal(single[key], alone[key]), key
    assert to_batch(structure, thetas).edge_index is batch.edge_index  # cached per batch size and device
    with pytest.raises(ValueError, match="parameters"):
        to_batch(structure, thetas[:, :-1])


def test_layer_stats_are_per_layer_and_normalisation_keeps_zeros():
    spec = SPECS["cnn-tanh"]
    structure = GraphStructure.from_spec(spec)
    thetas = init_params(spec, 8)
    stats = LayerStats.fit(structure, thetas.numpy())
    w1 = thetas[:, spec.tensor(1, "weight").offset : spec.tensor(1, "weight").stop]
    b0 = thetas[:, spec.tensor(0, "bias").offset : spec.tensor(0, "bias").stop]
    torch.testing.assert_close(stats.weight_std[1], w1.double().std().float())
    torch.testing.assert_close(stats.bias_std[1], b0.double().std().float())
    torch.testing.assert_close(stats.bias_mean[1], b0.double().mean().float())
    assert stats.bias_std[0] == 1 and stats.bias_mean[0] == 0

    batch = to_batch(structure, thetas)
    pad = batch.edge_attr == 0
    for center in (False, True):
        out = normalize(batch, stats, center)
        assert torch.all(out.x[batch.node_layer == 0] == 0) and torch.all(out.edge_attr[pad] == 0)
    scaled = normalize(batch, stats, center=False)
    torch.testing.assert_close(scaled.x[:, 0], batch.x[:, 0] / stats.bias_std[batch.node_layer])
    assert batch.x is not scaled.x  # the input batch is left alone

    fresh = LayerStats.identity(structure)
    fresh.load_state_dict(stats.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), stats.state_dict().values()))
    std, mean = stats.per_parameter(spec)
    assert std.shape == mean.shape == (spec.num_params,)
    assert torch.all(std[spec.tensor(1, "weight").offset : spec.tensor(1, "weight").stop] == stats.weight_std[1])


def test_to_params_is_differentiable():
    structure = GraphStructure.from_spec(TINY_MLP, reverse_edges=True)
    thetas = init_params(TINY_MLP, 2).requires_grad_()
    batch = to_batch(structure, thetas)
    to_params(structure, batch).sum().backward()
    assert torch.equal(thetas.grad, torch.ones_like(thetas))
