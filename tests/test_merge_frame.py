"""Merging in one frame: each network aligned on its own (to its decoded latent, to the medoid), and merging many."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.align.canonical import canonical_form, sorting_transform
from symzoo.align.rebasin import align_each
from symzoo.data.images import save_image_set
from symzoo.data.merge import write_medoid
from symzoo.data.zoo import write_zoo
from symzoo.merge.barrier import pair_barriers
from symzoo.merge.interpolate import alphas, curves_table, originals_table
from symzoo.merge.many import merge_many
from symzoo.merge.methods import endpoints, label
from symzoo.models.autoencoder import Architecture, build_autoencoder, reconstruct
from symzoo.nets.functional import batched_forward, unflatten
from symzoo.nets.spec import NetSpec
from symzoo.nets.symmetry import random_transform, scaling_group, transform
from symzoo.report.merge_many import frame_targets_markdown, merge_many_markdown, merge_many_summary
from symzoo.stages import merge_many as merge_many_stage
from tests.test_align import SPECS as ALIGN_SPECS
from tests.test_nets import init_params

SPECS = ALIGN_SPECS
"""MLPs and CNNs, tanh and ReLU, wide enough that weight matching recovers a planted element (tests/test_align.py)."""


def autoencoder(spec: NetSpec, thetas: torch.Tensor):
    options = config.entry("encoder", kind="scalegmn", hidden=16, layers=2, latent=8, dropout=0.0)
    return build_autoencoder(spec, Architecture.from_options(options), thetas_train=thetas).eval()


def group_kind(spec: NetSpec) -> str:
    """The transforms inside Re-Basin's group: permutations, with sign flips for tanh."""
    return "both" if scaling_group(spec) == "sign" else "permutation"


def sorted_per_tensor(spec: NetSpec, theta: torch.Tensor) -> list[torch.Tensor]:
    """Each weight and bias tensor's values sorted (absolute values for sign-flip groups): a group invariant."""
    key = torch.abs if scaling_group(spec) == "sign" else (lambda t: t)
    return [key(t).flatten().sort().values for layer in unflatten(spec, theta) for t in layer]


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("method", ["ae_align_scalegmn", "align_reference"])
def test_frame_endpoints_are_the_originals_moved_by_group_elements(name, method):
    spec = SPECS[name]
    thetas = init_params(spec, 9, seed=1)
    a, b, medoid = thetas[:4], thetas[4:8], thetas[8]
    ae = autoencoder(spec, thetas)
    ends_a, ends_b = endpoints(method, spec, a, b, ae=ae, medoid=medoid)
    x = torch.randn(32, *spec.input_shape)
    for ends, originals in ((ends_a, a), (ends_b, b)):
        assert not torch.equal(ends, originals)  # they did move...
        torch.testing.assert_close(  # ...but compute the original functions
            batched_forward(spec, ends, x), batched_forward(spec, originals, x), atol=1e-5, rtol=1e-5
        )
        for moved, original in zip(ends, originals):
            for u, v in zip(sorted_per_tensor(spec, moved), sorted_per_tensor(spec, original), strict=True):
                torch.testing.assert_close(u, v)  # the same multiset of weights: a group element, nothing else
    if method == "ae_align_scalegmn":  # each network matched to its own reconstruction
        both = torch.cat([a, b])
        torch.testing.assert_close(torch.cat([ends_a, ends_b]), align_each(spec, both, reconstruct(ae, both)))
    with pytest.raises(ValueError, match="align_reference"):
        endpoints("align_reference", spec, a, b)


@pytest.mark.parametrize("name", list(SPECS))
def test_a_perfect_decoder_gives_one_frame_and_a_zero_barrier(name):
    """A "decoder" that returns a transformed copy of its input, the same for every member of an orbit (the
    canonical form): two transformed copies of one network align to identical parameters, barrier 0."""
    spec = SPECS[name]
    theta = init_params(spec, 1, seed=2)[0]
    g = random_transform(spec, group_kind(spec), (6,), generator=torch.Generator().manual_seed(3))
    copies = transform(spec, theta.expand(6, -1), g)
    if scaling_group(spec) == "sign":
        decoded = canonical_form(spec, copies)
    else:  # the canonical form also rescales ReLU units, which Re-Basin's group does not: sort units only
        decoded = transform(spec, copies, sorting_transform(spec, copies))
    torch.testing.assert_close(decoded, decoded[:1].expand_as(decoded))  # one point per orbit
    aligned = align_each(spec, copies, decoded)
    torch.testing.assert_close(aligned, aligned[:1].expand_as(aligned), atol=1e-6, rtol=0)
    x, y = torch.randn(40, *spec.input_shape), torch.randint(0, 3, (40,))
    pairs = pl.DataFrame({"pair_id": [0, 1, 2], "model_a": [0, 2, 4], "model_b": [1, 3, 5]})
    a, b = copies[0::2], copies[1::2]
    frame = curves_table(
        spec, pairs, aligned[0::2], aligned[1::2], a, b, alphas(5), x, y, originals_table(spec, pairs, a, b, x, y)
    )
    barriers = pair_barriers(frame)
    assert barriers["loss_barrier"].abs().max() < 1e-5 and barriers["endpoint_dist"].abs().max() < 1e-6


@pytest.mark.parametrize("name", list(SPECS))
def test_every_member_of_an_orbit_aligns_to_the_same_network_whatever_the_reference(name):
    """Weight matching is a local search; started from each network's canonical form, the alignment to any
    reference is a function of the orbit: the frame is a canonicalisation, not a labelling accident."""
    spec = SPECS[name]
    theta, reference = init_params(spec, 2, seed=7)
    g = random_transform(spec, group_kind(spec), (5,), generator=torch.Generator().manual_seed(8))
    aligned = align_each(spec, transform(spec, theta.expand(5, -1), g), reference)
    torch.testing.assert_close(aligned, aligned[:1].expand_as(aligned), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(SPECS))
def test_merge_many_of_transformed_copies_returns_the_network_s_function(name):
    spec = SPECS[name]
    theta = init_params(spec, 1, seed=4)[0]
    g = random_transform(spec, group_kind(spec), (5,), generator=torch.Generator().manual_seed(5))
    copies = transform(spec, theta.expand(5, -1), g)
    x = torch.randn(32, *spec.input_shape)
    merged = merge_many(spec, copies, rounds=10, seed=0)
    torch.testing.assert_close(batched_forward(spec, merged[None], x), batched_forward(spec, theta[None], x))
    naive = copies.mean(0)  # the raw mean of the copies is another function
    assert (batched_forward(spec, naive[None], x) - batched_forward(spec, theta[None], x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="at least 2"):
        merge_many(spec, copies[:1])


def tiny_classifier_zoo(root, spec: NetSpec, n: int = 24):
    thetas = init_params(spec, n, seed=6)
    rng = np.random.default_rng(0)
    splits = ["train"] * 8 + ["val"] * 4 + ["test"] * (n - 12)
    models = pl.DataFrame(
        {
            "model_id": np.arange(n, dtype=np.int64),
            "run_id": [f"run-{i:03d}" for i in range(n)],
            "step": np.ones(n, dtype=np.int64),
            "test_accuracy": rng.uniform(0.3, 0.9, n),
            "split": splits,
            "kept": [True] * n,
        }
    )
    write_zoo(root / "zoo", spec, thetas.numpy(), models, {"dataset": "tiny"})
    arrays = {}
    for split, count in (("train", 20), ("val", 10), ("test", 30)):
        arrays[f"x_{split}"] = rng.standard_normal((count, *spec.input_shape)).astype(np.float32)
        arrays[f"y_{split}"] = rng.integers(0, spec.num_classes, count).astype(np.int64)
    save_image_set(root / "tiny.npz", arrays)
    write_medoid(root / "medoid.json", 0)
    return thetas


def test_the_merge_many_stage_writes_every_method_for_every_group(tmp_path):
    spec = SPECS["mlp-tanh"]
    thetas = tiny_classifier_zoo(tmp_path, spec)
    options = config.entry("merge", many={"ks": [2, 4], "groups": 3, "rounds": 5})
    models = {"ae_scalegmn": autoencoder(spec, thetas)}
    out = tmp_path / "merge_many.parquet"
    merge_many_stage.run(tmp_path / "zoo", tmp_path / "tiny.npz", options, tmp_path / "medoid.json", models, out,
                         torch.device("cpu"))  # fmt: skip
    table = pl.read_parquet(out)
    methods = {"naive", "merge_many", "align_reference", "medoid", "ae_scalegmn", "ae_align_scalegmn",
               "ae_latent_mean_scalegmn"}  # fmt: skip
    assert set(table["method"]) == methods and len(table) == 2 * 3 * len(methods)
    assert all(len(m) == k for m, k in zip(table["models"], table["k"]))
    assert set(np.concatenate(table["models"].to_list())) <= set(range(12, 24))  # test networks only
    medoid = table.filter(pl.col("method") == "medoid")
    assert medoid["accuracy"].n_unique() == 1  # the control ignores the group
    assert (table["parents_best_accuracy"] >= table["parents_mean_accuracy"]).all()
    rows = table.filter(pl.col("method") == "naive").row(0, named=True)  # recomputed from the networks
    x = torch.from_numpy(np.load(tmp_path / "tiny.npz")["x_test"])
    y = torch.from_numpy(np.load(tmp_path / "tiny.npz")["y_test"])
    logits = batched_forward(spec, thetas[rows["models"]].mean(0, keepdim=True), x)[0]
    assert rows["accuracy"] == pytest.approx(float((logits.argmax(-1) == y).double().mean()))
    assert rows["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    summary = merge_many_summary(table.with_columns(pl.lit("tiny").alias("zoo")))
    mm = summary.filter(pl.col("method") == "merge_many")
    assert mm["over_merge_many_mean"].abs().max() == 0
    text = merge_many_markdown(summary)
    assert "| tiny | merge_many | " in text and "| tiny | *parents' mean* |" in text and "K = 4" in text
    with pytest.raises(ValueError, match="merge.many.ks up to 20 needs as many"):  # 12 test networks
        merge_many_stage.run(tmp_path / "zoo", tmp_path / "tiny.npz", config.entry("merge", many={"ks": [20]}),
                             tmp_path / "medoid.json", {}, tmp_path / "x.parquet", torch.device("cpu"))  # fmt: skip
    assert not (tmp_path / "x.parquet").exists()


def test_frame_targets_read_the_pair_and_many_tables():
    pair = pl.DataFrame(
        {
            "zoo": ["z", "z", "z"],
            "method": ["rebasin", "ae_align_x", "align_reference"],
            "loss_barrier_mean": [0.3, 0.2, 0.4],
            "endpoint_dist_mean": [0.0, 1e-9, 0.0],
            "mid_score_gap_mean": [-0.05, -0.005, -0.1],
        }
    )
    many = pl.DataFrame(
        {
            "zoo": ["z"] * 3,
            "k": [8] * 3,
            "method": ["ae_align_x", "merge_many", "align_reference"],
            "accuracy_mean": [0.8, 0.7, 0.6],
            "over_parents_mean": [0.01, -0.09, -0.19],
            "parents_mean_accuracy": [0.79] * 3,
        }
    )
    text = frame_targets_markdown(pair, many)
    ours = next(line for line in text.splitlines() if label("ae_align_x") in line)
    assert ours.count("(reached)") == 3
    control = next(line for line in text.splitlines() if label("align_reference") in line)
    assert control.count("(**not reached**)") == 3
