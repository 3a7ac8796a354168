"""Fidelity measures on constructed cases: perfect, constant, shifted and nearest-neighbour 'decoders'."""

from __future__ import annotations

import math

import pytest
import torch

from symzoo.fit.fidelity import controls, fidelity, kl_matrix, log_probs, medoid, paired_kl
from symzoo.nets.spec import NetSpec
from tests.test_nets import init_params

SPEC = NetSpec("mlp", (1, 4, 4), (6,), 4, "tanh")
N = 9


@pytest.fixture(scope="module")
def nets():
    """Networks far enough apart (large random weights), their predictions on random images, labels."""
    thetas = init_params(SPEC, N + 12, seed=3) * 3
    x = torch.randn(200, *SPEC.input_shape, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (200,), generator=torch.Generator().manual_seed(1))
    logp = log_probs(SPEC, thetas, x)
    return logp[:N], logp[N:], y  # "test" originals, "train" networks, labels


def test_kl_matrix_is_the_mean_kl_over_images(nets):
    orig, train, _ = nets
    d = kl_matrix(orig, train[:5])
    p = orig[2].exp()
    direct = (p * (orig[2] - train[3])).sum(-1).mean()
    assert d.shape == (N, 5) and d[2, 3].item() == pytest.approx(direct.item(), rel=1e-5)
    torch.testing.assert_close(d[torch.arange(5), torch.arange(5)].float(), paired_kl(orig[:5], train[:5]).float())
    assert kl_matrix(orig, orig).diagonal().abs().max() < 1e-9


def test_an_autoencoder_that_returns_its_input_is_perfect(nets):
    orig, _, y = nets
    m = fidelity(orig, orig, y)
    assert m["kl"] == pytest.approx(0, abs=1e-9) and m["agreement"] == 1
    assert m["ident_recon"] == 1 and m["ident_orig"] == 1 and m["rank"] == 0
    assert m["acc_gap"] == 0 and m["kendall_tau"] == pytest.approx(1)
    assert m["diversity_recon"] == pytest.approx(m["diversity_orig"]) and m["diversity_recon"] > 0.1


def test_a_constant_decoder_is_at_chance_with_the_medoid_s_kl(nets):
    orig, train, y = nets
    best = medoid(train)
    m = fidelity(orig, train[best], y)  # the medoid for every input
    assert m["chance"] == pytest.approx(1 / N)
    assert m["ident_recon"] == pytest.approx(1 / N) and m["ident_orig"] == pytest.approx(1 / N)
    assert m["rank"] == pytest.approx(0.5, abs=0.5 / N + 1e-9)
    assert m["diversity_recon"] == pytest.approx(0, abs=1e-9)
    assert m["kl"] == pytest.approx(kl_matrix(orig, train[best : best + 1]).mean().item(), rel=1e-6)
    assert math.isnan(m["kendall_tau"])  # a constant accuracy has no ranking
    assert controls(orig, train, train[best], y)["medoid"]["kl"] == pytest.approx(m["kl"])


def test_a_shifted_decoder_is_never_identified(nets):
    """recon i = original i + 1: every reconstruction is another network's perfect copy."""
    orig, _, y = nets
    m = fidelity(orig, orig.roll(-1, dims=0), y)
    assert m["ident_recon"] == 0 and m["ident_orig"] == 0
    assert m["rank"] > 0.05 and m["kl"] > 0.1


def test_medoid_is_the_network_with_the_smallest_mean_kl_from_the_others(nets):
    _, train, _ = nets
    p = train.exp()
    mean_kl = [
        sum(float((p[i] * (train[i] - train[j])).sum(-1).mean()) for i in range(len(train)) if i != j)
        for j in range(len(train))
    ]
    assert medoid(train) == min(range(len(train)), key=mean_kl.__getitem__)
    with pytest.raises(ValueError, match="at least 2"):
        medoid(train[:1])


def test_controls_and_the_nearest_train_oracle(nets):
    orig, train, y = nets
    result = controls(orig, train, train[medoid(train)], y)
    assert set(result) == {"identity", "medoid", "mean_prediction", "nearest_train"}
    assert result["identity"]["kl"] == pytest.approx(0, abs=1e-9)
    nearest = kl_matrix(orig, train).min(1).values.mean().item()
    assert result["nearest_train"]["kl"] == pytest.approx(nearest, rel=1e-6)
    assert result["mean_prediction"]["kl"] < result["medoid"]["kl"]  # the mixture is the best constant in KL
    # originals that are themselves train networks: the oracle must return another one
    own = torch.eye(len(train), dtype=torch.bool)
    inside = controls(train, train, train[0], y, exclude=own)["nearest_train"]
    assert inside["kl"] > 0.01 and inside["ident_recon"] < 1


def test_the_targets_table_judges_classifiers_and_inrs_each_by_their_own_targets():
    import polars as pl

    from symzoo.report.tables import targets_markdown

    def row(zoo, model, kl, agreement, acc_gap, tau):
        return {"zoo": zoo, "model": model, "split": "test", "kl": kl, "agreement": agreement, "ident_recon": 0.6,
                "ident_orig": 0.9, "acc_gap": acc_gap, "kendall_tau": tau}  # fmt: skip

    fidelity = pl.DataFrame(
        [
            row("mlp", "ae_scalegmn", 0.08, 0.9, 0.01, 0.85),
            row("mlp", "nearest_train", 0.13, 0.8, 0.02, 0.75),
            row("inr", "ae_scalegmn", 0.05, math.nan, -90.0, 0.2),
            row("inr", "nearest_train", 0.02, math.nan, -85.0, 0.0),
            row("inr", "mean_prediction", 0.06, math.nan, -80.0, 0.0),
        ]
    )
    summary = pl.DataFrame(schema={"zoo": pl.String, "method": pl.String, "loss_barrier_mean": pl.Float64})
    lines = {}
    for zoo, task in (("mlp", "classification"), ("inr", "inr")):  # the zoo's task, from its spec
        table = targets_markdown(fidelity.filter(pl.col("zoo") == zoo), summary, task)
        lines |= {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
        assert ("render MSE < oracle" in table) == (task == "inr")
        assert ("abs(acc gap)" in table) == (task == "classification")  # no accuracy column for INR rows
    assert "+0.010 (reached)" in lines["mlp"] and "0.850 (reached)" in lines["mlp"]
    assert "0.080 vs 0.130 (reached)" in lines["mlp"]
    assert "0.0500 vs 0.0200 (**not reached**)" in lines["inr"]  # the oracle's render MSE
    assert "0.0500 vs 0.0300 (**not reached**)" in lines["inr"]  # half the mean image's
    assert "PSNR" not in lines["inr"] and "τ" not in lines["inr"]
