"""INR zoos: SIRENs in the one forward, their symmetry group, fitting, the zoo format, encoders and alignment."""

import math

import numpy as np
import pytest
import torch

from symzoo.nets.functional import coordinates, forward, render
from symzoo.nets.spec import NetSpec, siren_spec
from symzoo.nets.symmetry import random_transform, scaling_group, transform


def _siren_params(spec: NetSpec, n: int, seed: int = 0) -> torch.Tensor:
    """Random SIRENs with the SIREN initialisation (non-trivial images)."""
    from symzoo.zoo.inr import init_sirens

    return init_sirens(spec, n, torch.Generator().manual_seed(seed))


def test_siren_spec_is_the_papers():
    spec = siren_spec()
    assert spec.sizes == (2, 32, 32, 1)
    assert spec.num_params == 1185
    assert scaling_group(spec) == "sign"
    assert NetSpec.from_dict(spec.to_dict()) == spec
    assert "w0" not in NetSpec("mlp", (1, 8, 8), (4,), 10, "tanh").to_dict()["spec"]


def test_siren_forward_is_the_siren_convention():
    spec = siren_spec((5, 4), w0=30.0)
    theta = torch.randn(spec.num_params) * 0.1
    x = coordinates(3, 4)
    assert x.shape == (12, 2) and float(x.min()) == -1.0 and float(x.max()) == 1.0
    (w0, b0), (w1, b1), (w2, b2) = (
        (theta[t.offset : t.stop].view(t.shape), theta[u.offset : u.stop])
        for t, u in zip(spec.layout[::2], spec.layout[1::2])
    )
    h = torch.sin(30.0 * (x @ w0.T + b0))
    h = torch.sin(30.0 * (h @ w1.T + b1))
    expected = h @ w2.T + b2 + 0.5
    torch.testing.assert_close(forward(spec, theta, x), expected)
    torch.testing.assert_close(render(spec, theta[None], x)[0], expected[:, 0])


@pytest.mark.parametrize("kind", ["permutation", "scaling", "both"])
def test_siren_symmetries_preserve_the_rendered_image(kind):
    """P, D (sign flips) and PD on the hidden layers leave the image unchanged (sine is odd, whatever w0)."""
    spec = siren_spec()
    theta = _siren_params(spec, 4)
    g = random_transform(spec, kind, (4,), torch.Generator().manual_seed(1))
    moved = transform(spec, theta, g)
    assert not torch.allclose(moved, theta)
    if kind != "permutation":
        assert (torch.cat(g.scales, -1) < 0).any()
    coords = coordinates(16, 16)
    torch.testing.assert_close(render(spec, moved, coords), render(spec, theta, coords), atol=1e-5, rtol=0)


def test_a_positive_scaling_changes_a_siren():
    spec = siren_spec()
    theta = _siren_params(spec, 1)
    g = random_transform(
        NetSpec("mlp", (2, 1, 1), (32, 32), 2, "relu"), "scaling", (1,), torch.Generator().manual_seed(0)
    )
    coords = coordinates(8, 8)
    assert (render(spec, transform(spec, theta, g), coords) - render(spec, theta, coords)).abs().max() > 1e-2
    assert math.isfinite(float(render(spec, theta, coords).sum()))


@pytest.fixture(scope="module")
def inr_zoo(tmp_path_factory):
    """A small INR zoo on the real 28x28 MNIST digits, fitted with the default settings, through the stage (as
    `symzoo inr-zoo` runs it)."""
    from symzoo import config
    from symzoo.data.images import SplitSettings, save_image_set
    from symzoo.sources.mnist5k import mnist5k_image_set
    from symzoo.stages import inr_zoo as stage

    root = tmp_path_factory.mktemp("inr")
    save_image_set(root / "mnist5k.npz", mnist5k_image_set(SplitSettings((0.6, 0.2, 0.2), 0)))
    options = config.validate({"source": "inr", "dataset": "mnist5k", "num_models": 24, "batch_models": 10}, "zoo_inr")
    stage.run(options, root / "mnist5k.npz", root / "zoo", torch.device("cpu"))
    return root


STATED_PSNR = (28.0, 33.0, 22.0)
"""The default fit's PSNR on MNIST digits (the schema's ``steps``): a mean of about 30 dB, none below 22."""


@pytest.mark.slow  # the module's INR zoo: a real inr-zoo stage run (about 10 s)
def test_fitted_inrs_render_their_images_to_the_stated_psnr_and_keep_them_under_p_d_pd(inr_zoo):
    """Every INR renders its own 28x28 digit to the stated PSNR (recomputed from the zoo and the image set), not
    another digit; a random P, D or PD of it renders the same image (to float precision) and so the same PSNR."""
    from symzoo.data.images import load_image_set
    from symzoo.data.zoo import read_zoo
    from symzoo.zoo.inr import mse, psnr, targets

    zoo = read_zoo(inr_zoo / "zoo")
    images = load_image_set(inr_zoo / "mnist5k.npz")
    x = np.concatenate([images.split(s)[0] for s in ("train", "val", "test")])
    truth = targets(x[zoo.models["image_index"].to_numpy()], (28, 28))
    assert truth.shape == (24, 784) and float(truth.min()) == 0.0 and float(truth.max()) == 1.0
    coords = coordinates(28, 28)
    theta = zoo.tensor(range(len(zoo)))
    rendered = render(zoo.spec, theta, coords)
    value = psnr(mse(rendered, truth))
    low, high, floor = STATED_PSNR
    assert low < float(value.mean()) < high and float(value.min()) > floor, value
    torch.testing.assert_close(value.double(), torch.from_numpy(zoo.models["psnr"].to_numpy()), atol=0.05, rtol=0)
    # another image is far: the INRs are not one average digit
    assert float(psnr(mse(rendered, truth.roll(1, 0))).max()) < 15.0
    for k, kind in enumerate(("permutation", "scaling", "both")):
        g = random_transform(zoo.spec, kind, (len(theta),), torch.Generator().manual_seed(k))
        moved = transform(zoo.spec, theta, g)
        assert (moved - theta).abs().max() > 0.1
        torch.testing.assert_close(render(zoo.spec, moved, coords), rendered, atol=1e-5, rtol=0)
        torch.testing.assert_close(psnr(mse(render(zoo.spec, moved, coords), truth)), value, atol=1e-3, rtol=0)


@pytest.mark.slow  # the module's INR zoo: a real inr-zoo stage run (about 10 s)
def test_inr_zoo_round_trips_through_the_zoo_format(inr_zoo, tmp_path):
    from symzoo.data.zoo import read_zoo, write_zoo

    zoo = read_zoo(inr_zoo / "zoo")
    assert zoo.spec == siren_spec() and zoo.params.shape == (24, 1185)
    assert zoo.meta["image_size"] == [28, 28] and zoo.meta["dataset"] == "mnist5k"
    assert zoo.models["test_accuracy"].is_null().all()
    assert set(zoo.models["split"].to_list()) == {"train", "val", "test"}
    write_zoo(tmp_path / "copy", zoo.spec, np.asarray(zoo.params), zoo.models, zoo.meta)
    again = read_zoo(tmp_path / "copy")
    assert again.spec == zoo.spec and again.meta == zoo.meta and again.models.equals(zoo.models)
    assert (again.params == zoo.params).all()


def test_the_fit_does_not_depend_on_the_population_size():
    """Adam on the stacked parameters is per-network Adam: fitting alone or in a population gives one result."""
    from symzoo.zoo.inr import InrFitSettings, fit_sirens, init_sirens

    spec = siren_spec((8, 8))
    truth = torch.rand(3, 36)
    init = init_sirens(spec, 3, torch.Generator().manual_seed(0))
    settings = InrFitSettings(20, 1e-3, 0)
    together = fit_sirens(spec, truth, settings, torch.device("cpu"), init)
    alone = fit_sirens(spec, truth[1:2], settings, torch.device("cpu"), init[1:2])
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-4)


def _generic_sirens(n: int, seed: int = 0) -> tuple[NetSpec, torch.Tensor]:
    """SIRENs with the SIREN initialisation plus small noise (non-zero biases, like fitted ones)."""
    spec = siren_spec((8, 8))
    theta = _siren_params(spec, n, seed)
    return spec, theta + 0.05 * torch.randn(theta.shape, generator=torch.Generator().manual_seed(seed + 1))


def _latent_change(kind: str, group: str, n: int = 4) -> float:
    from symzoo import config
    from symzoo.models.autoencoder import Architecture, build_autoencoder

    spec, thetas = _generic_sirens(n)
    options = config.entry("encoder", kind=kind, hidden=16, layers=2, latent=8, dropout=0.0)
    torch.manual_seed(0)
    model = build_autoencoder(spec, Architecture.from_options(options), thetas_train=_generic_sirens(16, 5)[1]).eval()
    g = random_transform(spec, group, (n,), torch.Generator().manual_seed(2))
    with torch.no_grad():
        return (model.encode(thetas) - model.encode(transform(spec, thetas, g))).abs().max().item()


@pytest.mark.parametrize("group", ["permutation", "scaling", "both"])
def test_scalegmn_latent_is_invariant_to_p_d_and_pd_of_a_siren(group):
    assert _latent_change("scalegmn", group) < 1e-4


def test_ngnn_latent_is_invariant_to_permutations_of_a_siren_only():
    assert _latent_change("ngnn", "permutation") < 1e-4
    assert _latent_change("ngnn", "scaling") > 1e-3
    assert _latent_change("ngnn", "both") > 1e-3


def test_signed_weight_matching_recovers_a_planted_pd_on_a_siren():
    """Linear assignment for INRs (assignment on |C|, sign from C): b = PD . a is mapped back onto a exactly.

    On a fitted SIREN (coordinate ascent can stop in a local optimum on arbitrary parameters)."""
    from symzoo.align.rebasin import align_pair
    from symzoo.zoo.inr import InrFitSettings, fit_sirens

    spec = siren_spec((16, 16))
    truth = torch.rand(1, 64, generator=torch.Generator().manual_seed(0))
    a = fit_sirens(spec, truth, InrFitSettings(100, 1e-3, 0), torch.device("cpu"))[0]
    g = random_transform(spec, "both", (), torch.Generator().manual_seed(3))
    b = transform(spec, a, g)
    assert (torch.cat(g.scales) < 0).any()
    _, aligned = align_pair(spec, a, b, "rebasin_scaling")
    torch.testing.assert_close(aligned, a, atol=1e-6, rtol=0)
    _, permuted_only = align_pair(spec, a, b, "rebasin")  # permutations alone cannot undo the sign flips
    assert (permuted_only - a).abs().max() > 1e-2


@pytest.fixture(scope="module")
def zeros_and_ones(tmp_path_factory):
    """An INR zoo of 600 real MNIST zeros and ones (342 train INRs), fitted with the default settings."""
    from symzoo import config
    from symzoo.data.images import SPLITS, SplitSettings, save_image_set
    from symzoo.sources.mnist5k import mnist5k_image_set
    from symzoo.stages import inr_zoo as stage

    root = tmp_path_factory.mktemp("inr01")
    digits = mnist5k_image_set(SplitSettings((0.6, 0.2, 0.2), 0))
    arrays = {}
    for split in SPLITS:
        x, y = digits.split(split)
        keep = y <= 1
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[keep], y[keep]
    save_image_set(root / "digits01.npz", arrays)
    options = config.validate({"source": "inr", "dataset": "digits01", "num_models": 600}, "zoo_inr")
    stage.run(options, root / "digits01.npz", root / "zoo", torch.device("cpu"))
    return root


@pytest.mark.slow  # fits 600 INRs and trains an autoencoder for 25 short epochs (about 30 s)
def test_a_short_autoencoder_run_reconstructs_test_inrs_better_than_the_mean_image(zeros_and_ones, tmp_path):
    """The render-loss ScaleGMN autoencoder reconstructs *unseen* INRs closer than the best constant image (the
    train INRs' mean image), as diverse as the originals and each nearest its own: a decoder that collapses to a
    prototype (one image for every input) fails every one of these."""
    from symzoo import config
    from symzoo.data.zoo import read_zoo
    from symzoo.fit.autoencoder import FitSettings
    from symzoo.fit.fidelity import controls, fidelity, log_probs
    from symzoo.models.autoencoder import load_autoencoder, reconstruct
    from symzoo.stages.encoder import run as fit_autoencoder

    root = zeros_and_ones
    keys = dict(kind="scalegmn", message="bilinear", hidden=16, layers=2, latent=16, dropout=0.0, warmup_steps=10)
    keys |= dict(batch_size=16, epochs=25, patience=None, select="kl", decoder_output="zoo", clip=10.0)
    settings = FitSettings.from_options(config.entry("encoder", **keys))
    fit_autoencoder(root / "zoo", root / "digits01.npz", tmp_path, settings, torch.device("cpu"), progress=False)
    zoo, ae = read_zoo(root / "zoo"), load_autoencoder(tmp_path / "model.pt")
    coords = coordinates(28, 28)
    test = zoo.tensor(zoo.ids("test"))
    orig, recon = log_probs(zoo.spec, test, coords), log_probs(zoo.spec, reconstruct(ae, test), coords)
    truth = orig[..., 0]  # measured against the originals' own renders
    measured = fidelity(orig, recon, truth)
    train = log_probs(zoo.spec, zoo.tensor(zoo.ids("train")), coords)
    control = controls(orig, train, train[0, :, :], truth)
    mean_image = control["mean_prediction"]["kl"]
    assert measured["kl"] < 0.8 * mean_image, (measured["kl"], mean_image)
    assert measured["diversity_recon"] > 0.2 * measured["diversity_orig"], measured
    assert measured["ident_orig"] > 2 * measured["chance"], measured
    assert control["mean_prediction"]["diversity_recon"] < 1e-12  # the collapse these bounds rule out


def test_inr_orbit_of_noisy_copies_scores_the_ground_truth():
    """The INR orbit protocol: transformed, noisy copies chained in pairs; naive interpolation shows a barrier in
    the render MSE against the ground truth, signed weight matching removes most of it."""
    import polars as pl

    from symzoo.data.zoo import Zoo
    from symzoo.merge.barrier import pair_barriers
    from symzoo.merge.orbit import orbit_curves
    from symzoo.zoo.inr import InrFitSettings, fit_sirens

    spec = siren_spec((16, 16))
    truth = torch.rand(2, 64)
    params = fit_sirens(spec, truth, InrFitSettings(150, 1e-3, 0), torch.device("cpu"))
    models = pl.DataFrame(
        {
            "model_id": [0, 1],
            "test_accuracy": pl.Series([None, None], dtype=pl.Float64),
            "psnr": [30.0, 31.0],
            "split": ["test", "test"],
            "kept": [True, True],
        }
    )
    zoo = Zoo(None, spec, params.numpy(), models, {"image_size": [8, 8]})
    frame = orbit_curves(
        zoo,
        coordinates(8, 8),
        None,
        {"naive": None, "rebasin_scaling": None},
        ["permutation", "scaling", "both"],
        2,
        9,
        noise=0.005,
        copies=3,
        truth=lambda ids: truth[ids],
    )
    assert len(frame) == 3 * 2 * 2 * 2 * 9  # kinds x methods x (networks x (copies - 1)) pairs x alphas
    assert frame["model_a"].to_list() == frame["model_b"].to_list()
    barriers = (
        pair_barriers(frame, by=("kind", "method", "pair_id"))
        .group_by("kind", "method")
        .agg(pl.col("loss_barrier").mean())
    )
    value = {(r["kind"], r["method"]): r["loss_barrier"] for r in barriers.iter_rows(named=True)}
    for kind in ("permutation", "scaling", "both"):
        assert value[kind, "naive"] > 0.01
        assert value[kind, "rebasin_scaling"] < value[kind, "naive"] / 5


def test_inr_zoo_config_entries_and_encoder_overrides_are_validated():
    from symzoo import config

    base = {
        "datasets": {"digits": {"source": "digits"}},
        "zoos": {"inr": {"source": "inr", "dataset": "digits", "encoders": {"scalegmn": {"epochs": 3}}}},
        "encoders": {"scalegmn": {"kind": "scalegmn", "epochs": 9}},
    }
    data = config.validate(base)
    zoo = data["zoos"]["inr"]
    assert zoo["arch"] == {"widths": [32, 32], "w0": 30.0} and zoo["orbit"] == {"noise": 0.005, "copies": 2}
    assert config.zoo_encoder(data, "inr", "scalegmn")["epochs"] == 3 and data["encoders"]["scalegmn"]["epochs"] == 9
    assert data["merge"]["orbit"]["noise"] == 0.0 and data["merge"]["orbit"]["copies"] == 1
    bad = base | {"zoos": {"inr": base["zoos"]["inr"] | {"encoders": {"ngnn": {}}}}}
    with pytest.raises(config.ConfigError, match="zoos.inr.encoders.ngnn"):
        config.validate(bad)
    bad = base | {"zoos": {"inr": base["zoos"]["inr"] | {"image_size": 1}}}
    with pytest.raises(config.ConfigError, match="image_size"):
        config.validate(bad)


def test_pair_curves_of_inrs_score_renders_against_the_mixed_image():
    """INR curves: loss is the render MSE against (1 - alpha) image_A + alpha image_B, score its PSNR, dist_a /
    dist_b the MSE from the originals' renders (0 at their own end)."""
    from symzoo.merge.interpolate import alphas, curves

    spec, theta = _generic_sirens(4)
    coords = coordinates(6, 6)
    truth = torch.rand(2, 2, 36, generator=torch.Generator().manual_seed(0))
    a, b = theta[:2], theta[2:]
    values = curves(spec, a, b, alphas(3), coords, truth)
    ra, rb = render(spec, a, coords), render(spec, b, coords)
    torch.testing.assert_close(values["loss"][:, 0], (ra - truth[0]).square().mean(-1).double())
    torch.testing.assert_close(values["loss"][:, 2], (rb - truth[1]).square().mean(-1).double())
    mid = render(spec, (a + b) / 2, coords)
    torch.testing.assert_close(values["loss"][:, 1], (mid - truth.mean(0)).square().mean(-1).double())
    torch.testing.assert_close(values["score"], -10 * torch.log10(values["loss"]))
    assert values["dist_a"][:, 0].abs().max() < 1e-12 and values["dist_b"][:, 2].abs().max() < 1e-12


def test_the_task_is_stored_in_arch_json_and_old_files_infer_it():
    """One task switch: ``spec.task``, written into arch.json; an arch.json without it gets its activation's."""
    from symzoo.merge.interpolate import score_column
    from symzoo.nets.spec import task_of

    siren, classifier = siren_spec(), NetSpec("mlp", (1, 8, 8), (4,), 10, "tanh")
    assert (siren.task, classifier.task) == ("inr", "classification") and siren.is_inr and not classifier.is_inr
    for spec in (siren, classifier):
        stored = spec.to_dict()
        assert stored["spec"]["task"] == spec.task
        assert NetSpec.from_dict(stored) == spec and task_of(stored) == spec.task
        old = {**stored, "spec": {k: v for k, v in stored["spec"].items() if k != "task"}}  # before the field
        assert NetSpec.from_dict(old) == spec and task_of(old) == spec.task
    assert NetSpec("mlp", (2, 1, 1), (8,), 1, "sine", task="inr") == siren_spec((8,))
    with pytest.raises(ValueError, match="task"):
        NetSpec("mlp", (1, 8, 8), (4,), 10, "tanh", task="inr")  # an INR is a SIREN
    with pytest.raises(ValueError, match="task"):
        NetSpec("mlp", (1, 8, 8), (4,), 10, "tanh", task="regression")
    assert score_column("inr") == score_column(siren) == "psnr" and score_column("classification") == "test_accuracy"


@pytest.mark.slow  # the module's INR zoo: a real inr-zoo stage run (about 10 s)
def test_an_inr_zoo_s_arch_json_names_its_task(inr_zoo, tmp_path):
    import json
    import shutil

    from symzoo.data.zoo import read_task, read_zoo

    arch = json.loads((inr_zoo / "zoo/arch.json").read_text())
    assert arch["spec"]["task"] == "inr" and read_task(inr_zoo / "zoo") == "inr"
    old = tmp_path / "old"  # an INR zoo written before the task was stored
    shutil.copytree(inr_zoo / "zoo", old)
    del arch["spec"]["task"]
    (old / "arch.json").write_text(json.dumps(arch))
    assert read_task(old) == "inr" and read_zoo(old).spec == read_zoo(inr_zoo / "zoo").spec


def _report_curves(zoo: str, task: str, score: float, kind: str | None = None):
    """Curves of four methods x two pairs x five alphas, task-neutral columns: a bump in loss, a dip in score."""
    import polars as pl

    rows = []
    for method in ("naive", "rebasin", "medoid", "ae_scalegmn"):
        for pair in (0, 1):
            for alpha in np.linspace(0, 1, 5):
                bump = math.sin(math.pi * alpha) * (0.1 + 0.01 * pair)
                ids = {"zoo": zoo, "method": method, "pair_id": pair, "model_a": 2 * pair, "model_b": 2 * pair + 1}
                values = {"loss": 0.5 + bump, "score": score - bump, "dist_a": alpha / 5, "dist_b": (1 - alpha) / 5}
                originals = {"orig_loss_a": 0.5, "orig_loss_b": 0.5, "orig_score_a": score, "orig_score_b": score}
                rows.append(ids | {"alpha": alpha, "split": "test"} | values | originals | {"task": task})
    frame = pl.DataFrame(rows)
    return frame if kind is None else frame.with_columns(pl.lit(kind).alias("kind"))


def test_barriers_md_gives_inr_zoos_their_own_section_and_units():
    """An INR zoo's rows (score: PSNR in dB, dist: render MSE) never sit beside a classifier's accuracy."""
    import polars as pl

    from symzoo.report.tables import FIDELITY_COLUMNS, build_tables

    curves = pl.concat([_report_curves("mlp", "classification", 0.9), _report_curves("inr", "inr", 95.0)])
    orbit = pl.concat(
        [_report_curves("mlp", "classification", 0.9, "permutation"), _report_curves("inr", "inr", 95.0, "both")]
    )
    fidelity = pl.DataFrame(
        [
            {"zoo": zoo, "model": model, "split": split, "n": 10}
            | {c: 0.5 for c in FIDELITY_COLUMNS}
            | ({"agreement": math.nan, "acc_gap": -92.0} if zoo == "inr" else {})
            for zoo in ("mlp", "inr")
            for model in ("ae_scalegmn", "nearest_train")
            for split in ("train", "test")
        ]
    )
    tables = build_tables(curves, orbit, pl.DataFrame(), fidelity)
    text = tables["barriers.md"]
    classifiers, inrs = text.split("# INR zoos (image fitting)")
    assert classifiers.startswith("# Classifier zoos\n")
    assert "| mlp |" in classifiers and "| inr |" not in classifiers
    assert "PSNR" not in classifiers and "render MSE" not in classifiers and "95." not in classifiers
    assert "| inr |" in inrs and "| mlp |" not in inrs
    assert "`score` (`score_barrier`" in inrs and "PSNR of the same in dB" in inrs and "render MSE < oracle" in inrs
    assert "the render MSE of each endpoint" in inrs and "## INR orbit" in inrs
    for section in (classifiers, inrs):
        assert section.count("## Barriers (mean ± 95% CI over pairs)") == 1
    # the tables' columns are task-neutral; the curves keep their task
    barriers = tables["barriers.parquet"]
    assert {"score_barrier", "endpoint_dist", "endpoint_score_gap", "mid_dist", "score_a", "orig_score_b"} <= set(
        barriers.columns
    )
    assert not any("acc" in c or "kl" in c for c in (*barriers.columns, *tables["barriers_summary.parquet"].columns))
    assert set(tables["curves.parquet"]["task"]) == {"classification", "inr"}
    inr_orbit = tables["inr_orbit.parquet"]
    assert {"mid_mse_mean", "endpoint_dist_mean", "copies_mse_mean"} <= set(inr_orbit.columns)
    assert inr_orbit["copies_mse_mean"].to_list() == [0.5] * len(inr_orbit)  # the copies' own loss (orig_loss)
    assert "copies' own MSE" in inrs and "medoid" in inr_orbit["method"].to_list()
    # the INR fidelity rows under their own names: no KL, accuracy or agreement column
    fidelity_header = next(line for line in inrs.splitlines() if line.startswith("| zoo | model | n |"))
    assert "render MSE" in fidelity_header and "PSNR gap (dB)" in fidelity_header
    assert not {"kl", "acc_gap", "agreement"} & {cell.strip() for cell in fidelity_header.split("|")}
    assert tables["interpolation.csv"].columns == ["zoo", "method", "split", "alpha", "loss", "score"]


def test_the_inr_orbit_figure_draws_the_medoid_control_and_the_copies_own_level():
    """The paper's INR figure with its controls: the medoid's curve and the noisy copies' own MSE (dashed)."""
    import matplotlib.pyplot as plt

    from symzoo.report.figures import inr_orbit_figure

    fig = inr_orbit_figure(_report_curves("inr", "inr", 95.0, "both"))
    panel = fig.axes[2]  # PD
    labels = [text.get_text() for text in panel.get_legend().get_texts()]
    assert {"naive", "linear assignment (P)", "medoid (control)", "the noisy copies themselves"} <= set(labels)
    dashed = [line for line in panel.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(0.5)  # the copies' orig_loss
    plt.close(fig)
