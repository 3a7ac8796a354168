"""Merging: pairs, batched interpolation, barriers, the orbit experiment."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.data.zoo import Zoo, finalize_models
from symzoo.fit.fidelity import log_probs, paired_kl
from symzoo.merge.barrier import aggregate, markdown, pair_barriers
from symzoo.merge.interpolate import (
    alphas,
    curves,
    curves_table,
    interpolate,
    originals_table,
    plan_passes,
    select_pairs,
    top_test_networks,
)
from symzoo.merge.methods import endpoints
from symzoo.merge.orbit import orbit_curves
from symzoo.models.autoencoder import Architecture, build_autoencoder
from symzoo.nets.functional import activation_floats, evaluate
from symzoo.nets.spec import NetSpec
from tests.test_nets import init_params

SPEC = NetSpec("mlp", (1, 4, 4), (6, 5), 3, "tanh")


def curve(loss, score, dist_a=0.0, dist_b=0.0, orig=None) -> pl.DataFrame:
    """A curve table; the originals' loss and score default to the curve's own endpoints."""
    a = np.linspace(0, 1, len(loss))
    orig = orig or (loss[0], loss[-1], score[0], score[-1])
    names = ("orig_loss_a", "orig_loss_b", "orig_score_a", "orig_score_b")
    return pl.DataFrame(
        {"pair_id": 0, "alpha": a, "loss": loss, "score": score, "dist_a": dist_a, "dist_b": dist_b}
        | dict(zip(names, orig))
    )


def test_barrier_of_a_straight_line_is_zero():
    a = np.linspace(0, 1, 21)
    row = pair_barriers(curve(1 + 2 * a, 0.9 - 0.4 * a)).row(0, named=True)
    assert row["loss_barrier"] == pytest.approx(0, abs=1e-12)
    assert row["score_barrier"] == pytest.approx(0, abs=1e-12)
    # Ainsworth's variant measures against the mean of the endpoints: the higher end shows up
    assert row["loss_barrier_mid"] == pytest.approx(1.0)
    flat = pair_barriers(curve(np.full(21, 0.7), np.full(21, 0.8))).row(0, named=True)
    assert all(flat[m] == pytest.approx(0, abs=1e-12) for m in ("loss_barrier_mid", "score_barrier_mid"))


def test_barriers_against_the_originals_and_endpoint_fidelity():
    """A path between two replacement networks: its own barrier is 0, against the originals it is not."""
    a = np.linspace(0, 1, 21)
    dist_a, dist_b = 0.3 + a, 1.3 - a  # distance (KL) of each path network from the two originals
    row = pair_barriers(curve(np.full(21, 0.5), np.full(21, 0.9), dist_a, dist_b, orig=(0.2, 0.4, 0.8, 0.7))).row(
        0, named=True
    )
    assert row["loss_barrier"] == pytest.approx(0, abs=1e-12)
    assert row["loss_barrier_orig"] == pytest.approx(0.3)  # 0.5 - 0.2 at alpha = 0
    assert row["endpoint_dist"] == pytest.approx(0.3)  # KL(A || end A) = KL(B || end B) = 0.3
    assert row["endpoint_score_gap"] == pytest.approx(((0.9 - 0.8) + (0.9 - 0.7)) / 2)
    assert row["mid_dist"] == pytest.approx(0.8)


def test_a_known_bump_gives_the_known_barrier():
    a = np.linspace(0, 1, 21)
    row = pair_barriers(curve(1 + a + 0.5 * np.sin(np.pi * a), 0.9 - 0.3 * np.sin(np.pi * a))).row(0, named=True)
    assert row["loss_barrier"] == pytest.approx(0.5)
    assert row["score_barrier"] == pytest.approx(0.3)
    assert row["score_barrier_mid"] == pytest.approx(0.3)
    assert (row["loss_a"], row["loss_b"], row["score_a"]) == pytest.approx((1.0, 2.0, 0.9))


def test_aggregate_gives_mean_std_ci_and_n():
    rows = pl.concat(
        [
            curve(1 + h * np.sin(np.pi * np.linspace(0, 1, 5)), np.full(5, 0.5)).with_columns(
                pl.lit(i).alias("pair_id"), pl.lit("z").alias("zoo")
            )
            for i, h in enumerate([0.1, 0.2, 0.3, 0.4])
        ]
    )
    summary = aggregate(pair_barriers(rows, ("zoo", "pair_id")), ("zoo",)).row(0, named=True)
    assert summary["n"] == 4 and summary["loss_barrier_mean"] == pytest.approx(0.25)
    assert summary["loss_barrier_std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert summary["loss_barrier_ci95"] == pytest.approx(3.182446 * summary["loss_barrier_std"] / 2, rel=1e-5)
    assert "0.2500 ±" in markdown(aggregate(pair_barriers(rows, ("zoo", "pair_id")), ("zoo",)), ("zoo",))


def test_interpolation_endpoints_reproduce_the_networks_own_metrics():
    theta = init_params(SPEC, 6)
    x, y = torch.randn(40, *SPEC.input_shape), torch.randint(0, 3, (40,))
    a, b = theta[:3], theta[3:]
    path = interpolate(a, b, alphas(5))
    torch.testing.assert_close(path[:, 2], (a + b) / 2)
    budget = 5 * 16 * activation_floats(SPEC) * 4  # one pair and 16 images per pass: groups and batches split
    assert plan_passes(SPEC, 5, len(x), budget) == (1, 16)
    values = curves(SPEC, a, b, alphas(5), x, y, budget=budget)
    loss, acc = values["loss"].float(), values["score"].float()
    own_loss, own_acc = evaluate(SPEC, theta, x, y)
    torch.testing.assert_close(loss[:, 0], own_loss[:3])
    torch.testing.assert_close(loss[:, -1], own_loss[3:])
    torch.testing.assert_close(acc[:, 0], own_acc[:3])
    mid_loss, _ = evaluate(SPEC, (a + b) / 2, x, y)
    torch.testing.assert_close(loss[:, 2], mid_loss)
    # KL from the references: 0 where the path meets them, and what fidelity.kl_matrix says at the midpoint
    assert values["dist_a"][:, 0].abs().max() < 1e-6 and values["dist_b"][:, -1].abs().max() < 1e-6
    mid = log_probs(SPEC, (a + b) / 2, x)
    torch.testing.assert_close(values["dist_a"][:, 2], paired_kl(log_probs(SPEC, a, x), mid), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("spec", [SPEC, NetSpec("cnn", (1, 28, 28), (16, 16, 16), 10, "relu")])
def test_interpolation_passes_are_sized_by_bytes_not_by_pairs(spec):
    """The largest activation of a pass stays within the budget, and the plan does not grow with the pairs."""
    budget = 64 * 2**20
    for k, n_images in ((21, 5000), (40, 10000), (2, 100)):
        pairs, images = plan_passes(spec, k, n_images, budget)
        assert pairs * k * images * activation_floats(spec) * 4 <= max(budget, k * activation_floats(spec) * 4)
        assert images <= n_images
    assert activation_floats(spec) == max(
        math.prod(spec.input_shape), spec.num_classes, *(math.prod(s) for s in spec.hidden_shapes())
    )


def test_medoid_control_has_zero_barrier_and_the_medoid_s_fidelity():
    theta = init_params(SPEC, 7)
    x, y = torch.randn(40, *SPEC.input_shape), torch.randint(0, 3, (40,))
    a, b, medoid = theta[:3], theta[3:6], theta[6]
    ends_a, ends_b = endpoints("medoid", SPEC, a, b, medoid=medoid)
    assert torch.equal(ends_a, medoid.expand(3, -1)) and torch.equal(ends_b, medoid.expand(3, -1))
    pairs = pl.DataFrame({"pair_id": [0, 1, 2], "model_a": [0, 1, 2], "model_b": [3, 4, 5]})
    frame = curves_table(SPEC, pairs, ends_a, ends_b, a, b, alphas(5), x, y, originals_table(SPEC, pairs, a, b, x, y))
    row = pair_barriers(frame).to_dicts()
    logp_medoid = log_probs(SPEC, medoid[None], x)
    for i, r in enumerate(row):
        assert r["loss_barrier"] == pytest.approx(0, abs=1e-6) and r["score_barrier"] == pytest.approx(0, abs=1e-9)
        kl = (
            paired_kl(log_probs(SPEC, a[i : i + 1], x), logp_medoid)
            + paired_kl(log_probs(SPEC, b[i : i + 1], x), logp_medoid)
        ) / 2
        assert r["endpoint_dist"] == pytest.approx(float(kl), rel=1e-4)
        assert r["mid_dist"] == pytest.approx(r["endpoint_dist"], rel=1e-6)  # the whole path is the medoid
    with pytest.raises(ValueError, match="medoid"):
        endpoints("medoid", SPEC, a, b)


def models_frame(acc: np.ndarray) -> pl.DataFrame:
    n = len(acc)
    models = pl.DataFrame(
        {"model_id": np.arange(n), "run_id": [f"r{i}" for i in range(n)], "step": np.ones(n, int), "test_accuracy": acc}
    )
    return finalize_models(np.zeros((n, 1), np.float32), models, pl.lit(True), [0.2, 0.2, 0.6])[1]


def test_pairs_are_disjoint_seeded_and_from_the_top():
    models = models_frame(np.random.default_rng(0).uniform(size=400))
    top = top_test_networks(models, 30, "classification")
    assert (models[top]["split"] == "test").all()
    cutoff = models[top]["test_accuracy"].min()
    assert models.filter((pl.col("split") == "test") & (pl.col("test_accuracy") > cutoff)).height == 29
    pairs = select_pairs(models, 10, 30, 3, "classification")
    ids = pairs["model_a"].to_list() + pairs["model_b"].to_list()
    assert len(set(ids)) == 20 and set(ids) <= set(top.tolist())
    assert pairs.equals(select_pairs(models, 10, 30, 3, "classification"))
    assert not pairs.equals(select_pairs(models, 10, 30, 4, "classification"))
    with pytest.raises(ValueError, match=r"merge.pairs = 16 needs 32 .* at most 15"):  # never silently fewer
        select_pairs(models, 16, 30, 0, "classification")
    with pytest.raises(ValueError, match="merge.pairs"):
        select_pairs(models_frame(np.array([0.5])), 1, 10, 0, "classification")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_orbit_barrier_of_an_invariant_encoder_is_zero_and_naive_is_not(activation):
    spec = NetSpec("mlp", (1, 4, 4), (6, 5), 3, activation)
    n = 12
    theta = init_params(spec, n).numpy()
    models = models_frame(np.linspace(0.5, 0.9, n))
    zoo = Zoo(root=None, spec=spec, params=theta, models=models.with_columns(pl.lit("test").alias("split")))
    x, y = torch.randn(64, *spec.input_shape), torch.randint(0, 3, (64,))
    options = config.entry("encoder", kind="scalegmn", hidden=16, layers=2, latent=8, dropout=0.0)
    ae = build_autoencoder(spec, Architecture.from_options(options)).eval()
    frame = orbit_curves(zoo, x, y, {"naive": None, "ae_scalegmn": ae}, ["permutation", "both"], 6, 11, seed=0)
    assert frame["dist_b"].filter(frame["method"] == "naive").abs().max() > 1e-3  # away from the transformed end...
    naive_ends = frame.filter((pl.col("method") == "naive") & (pl.col("alpha").is_in([0.0, 1.0])))
    assert naive_ends["dist_a"].abs().max() < 1e-5  # ...but both ends compute the original's function
    barriers = pair_barriers(frame, ("method", "kind", "pair_id"))
    ae_rows = barriers.filter(pl.col("method") == "ae_scalegmn")
    assert ae_rows["loss_barrier"].abs().max() < 1e-5 and ae_rows["score_barrier"].abs().max() < 1e-6
    naive = barriers.filter(pl.col("method") == "naive")
    assert naive["loss_barrier"].max() > 1e-2
    # the endpoints of the naive curve are the same function: equal loss at both ends
    assert (naive["loss_a"] - naive["loss_b"]).abs().max() < 1e-5


def test_mixing_the_first_layer_equals_evaluating_the_mixed_network_cnn():
    spec = NetSpec("cnn", (1, 8, 8), (4, 5), 3, "relu", padding=1)
    theta = init_params(spec, 4)
    x, y = torch.randn(30, *spec.input_shape), torch.randint(0, 3, (30,))
    a, b = theta[:2], theta[2:]
    values = curves(spec, a, b, alphas(5), x, y)
    for j, alpha in enumerate(alphas(5).tolist()):
        loss, acc = evaluate(spec, (1 - alpha) * a + alpha * b, x, y)
        torch.testing.assert_close(values["loss"][:, j].float(), loss, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(values["score"][:, j].float(), acc)
