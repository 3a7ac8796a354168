"""The Snakemake workflow end to end on config/test.yaml (lint and formatting: test_lint.py).

Every test reads the one completed run of the module (the ``workflow`` fixture); a test that deletes outputs or
runs jobs again does it on its own copy (``own_workflow``), so the tests pass in any order and alone.
"""

from __future__ import annotations

import pytest
import yaml

from symzoo.data.images import load_image_set
from symzoo.data.networks import read_networks
from symzoo.data.zoo import read_zoo
from symzoo.report import FIGURES, TIMED
from symzoo.report.finetune import TIME_COLUMNS

# the first test to ask for the workflow waits for its run (up to 600 s), and some run jobs again on their copy
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_all_builds_every_target(workflow):
    cfg = yaml.safe_load(workflow.config.read_text())
    for name in cfg["datasets"]:
        images = load_image_set(workflow.root / f"results/data/{name}.npz")
        assert len(images.x_train) > 0
    assert load_image_set(workflow.root / "results/data/cifar10gs.npz").input_shape == (1, 32, 32)
    zoo = read_zoo(workflow.root / "results/zoo/cnn")
    assert zoo.spec.num_params == 4970 and len(zoo.ids("train")) > 0
    assert zoo.meta["dataset"] == "cifar10gs" and len(zoo.meta["source"]["sha256"]) == 64
    assert (workflow.root / "results/logs/zoo/cnn.log").read_text()


def test_second_run_has_nothing_to_do(workflow):
    out = workflow.snakemake("all", "--dry-run", "--quiet")
    assert "Nothing to be done" in out.stdout + out.stderr or out.stdout.strip() == ""


def test_editing_one_entry_reruns_only_its_jobs(workflow, tmp_path):
    cfg = yaml.safe_load(workflow.config.read_text())
    cfg["zoos"]["cnn"]["min_accuracy"] = 0.2
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    out = workflow.snakemake("all", "--dry-run", config=edited)
    text = out.stdout + out.stderr
    assert "smallcnnzoo" in text and "rule dataset" not in text


def planned_shards(out) -> set[str]:
    """The shard jobs a dry run plans, from the ``wildcards: zoo=..., shard=...`` lines."""
    return {line.split("shard=")[1].strip() for line in (out.stdout + out.stderr).splitlines() if "shard=" in line}


def test_a_crashed_shard_reruns_alone(own_workflow):
    # what a crash of shard 0001 leaves: no output of that shard (outputs are atomic), no merged zoo
    for path in [
        *(own_workflow.root / "results/zoo/mlp/shards/0001").iterdir(),
        *(own_workflow.root / "results/zoo/mlp").glob("*.*"),
    ]:
        path.unlink()
    out = own_workflow.snakemake("all", "--dry-run")
    assert planned_shards(out) == {"0001"} and "zoo_merge" in out.stdout
    own_workflow.snakemake("all")
    assert "Nothing to be done" in own_workflow.snakemake("all", "--dry-run").stdout


def test_growing_a_zoo_adds_shards_and_reruns_none(workflow, tmp_path):
    cfg = yaml.safe_load(workflow.config.read_text())
    cfg["zoos"]["mlp"]["num_models"] += cfg["zoos"]["mlp"]["batch_models"]
    grown = tmp_path / "grown.yaml"
    grown.write_text(yaml.safe_dump(cfg))
    assert planned_shards(workflow.snakemake("all", "--dry-run", config=grown)) == {"0002"}


def test_generated_zoo_has_the_zoo_format(workflow):
    zoo = read_zoo(workflow.root / "results/zoo/mlp")
    assert len(zoo) == 16 and zoo.meta["source"] == {"kind": "generate", "step": 2, "shards": 2}


def test_a_bad_config_key_is_named(workflow, tmp_path):
    cfg = yaml.safe_load(workflow.config.read_text())
    cfg["zoos"]["cnn"]["min_acuracy"] = 0.2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = workflow.snakemake("all", "--dry-run", config=bad, check=False)
    assert out.returncode != 0 and "min_acuracy" in out.stdout + out.stderr


def test_tables_and_figures_are_built(workflow):
    import polars as pl

    tables = workflow.root / "results/tables"
    summary = pl.read_parquet(tables / "barriers_summary.parquet")
    methods = {"naive", "rebasin", "align_reference", "medoid", "ae_scalegmn", "ae_align_scalegmn"}
    assert set(summary["method"]) == methods
    frame = summary.filter(pl.col("method").is_in(["align_reference", "ae_align_scalegmn"]))
    assert (frame["endpoint_dist_mean"].abs() < 1e-5).all()  # each network aligned on its own: the originals
    many = pl.read_parquet(tables / "merge_many_summary.parquet")  # the classifier zoos, every method, K = 2 and 3
    assert set(many["zoo"]) == {"cnn", "mlp"} and set(many["k"]) == {2, 3} and (many["n"] == 2).all()
    assert {"naive", "merge_many", "ae_align_scalegmn", "ae_latent_mean_scalegmn", "medoid"} <= set(many["method"])
    assert set(summary["zoo"]) == {"cnn", "mlp", "inr"} and (summary["n"] == 2).all()
    medoid = summary.filter(pl.col("method") == "medoid")
    assert (medoid["loss_barrier_mean"].abs() < 1e-6).all() and (medoid["endpoint_dist_mean"] > 0).all()
    curves = pl.read_parquet(workflow.root / "results/merge/mlp/naive/curves.parquet")
    assert curves.columns[:7] == ["pair_id", "model_a", "model_b", "alpha", "split", "loss", "score"]
    assert {"dist_a", "dist_b", "orig_loss_a", "orig_score_b"} <= set(curves.columns) and len(curves) == 2 * 5
    assert set(curves["task"]) == {"classification"}
    fidelity = pl.read_parquet(tables / "fidelity.parquet")
    assert {"ae_scalegmn", "identity", "medoid", "mean_prediction", "nearest_train"} == set(fidelity["model"])
    text = (tables / "barriers.md").read_text()
    assert "| zoo | method |" in text and "## Fidelity of the reconstructions" in text
    classifiers, inrs = text.split("# INR zoos", 1)  # each task in its own section, classifier zoos first
    assert classifiers.startswith("# Classifier zoos") and "| inr |" not in classifiers and "PSNR" not in classifiers
    assert "| inr |" in inrs and "| mlp |" not in inrs and "PSNR (dB)" in inrs
    generalization = pl.read_parquet(tables / "generalization.parquet")
    assert set(generalization["model"]) == {"scalegmn", "statnn", "probe_scalegmn"}
    assert set(generalization["zoo"]) == {"cnn", "mlp"} and {"tau", "r2", "l1", "tau_transformed"} <= set(
        generalization.columns
    )
    assert "# Generalization prediction" in (tables / "generalization.md").read_text()
    inr = pl.read_parquet(tables / "inr_orbit.parquet")  # the INR zoo: P and PD orbits of noisy copies
    assert set(inr["zoo"]) == {"inr"} and set(inr["kind"]) == {"permutation", "both"} and (inr["n"] == 2).all()
    assert {"naive", "rebasin", "ae_scalegmn"} <= set(inr["method"]) and (inr["mid_mse_mean"] > 0).all()
    assert "## INR orbit" in inrs and read_zoo(workflow.root / "results/zoo/inr").spec.task == "inr"
    finetune = pl.read_parquet(tables / "finetune.parquet")  # every method on both classifier zoos
    assert set(finetune["zoo"]) == {"cnn", "mlp"} and {"initial", "best_train", "sgd_ce-2", "sgd_l1-1",
                                                         "scalegmn_ce", "scalegmn_l1", "scalegmn_broken_ce"} <= set(
        finetune["method"]
    )  # fmt: skip
    assert "### Targets (ScaleGMN-B operator)" in (tables / "finetune.md").read_text()
    tuned = read_networks(workflow.root / "results/finetune/mlp/scalegmn_ce/params.npy", read_zoo(workflow.root /
                          "results/zoo/mlp").spec)  # fmt: skip
    assert len(tuned) == len(read_zoo(workflow.root / "results/zoo/mlp").ids("test"))
    generation = pl.read_parquet(tables / "generation.parquet")  # every model and control; the sphere on ReLU only
    models = {zoo: set(generation.filter(pl.col("zoo") == zoo)["model"]) for zoo in ("cnn", "mlp")}
    everything = {"test", "memoriser", "noise", "gaussian", "flat_raw", "flat_aligned_ot", "graph_raw"}
    assert models["cnn"] == everything | {"sphere_normalized"} and models["mlp"] == everything
    assert "## mlp" in (tables / "generation.md").read_text()
    samples = read_networks(workflow.root / "results/generate/cnn/sphere_normalized/samples.npy",
                            read_zoo(workflow.root / "results/zoo/cnn").spec)  # fmt: skip
    assert len(samples) == 6
    for name in ("interpolation", "orbit", "training", "fidelity", "generalization", "inr_orbit", "finetune",
                 "generation_accuracy", "generation_novelty", "generation_bma"):  # fmt: skip
        assert (workflow.root / f"results/figures/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (workflow.root / f"results/figures/{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_figures_regenerate_from_the_tables_alone(own_workflow):
    figures = [own_workflow.root / f"results/figures/{name}.png" for name in FIGURES]
    for png in figures:
        png.unlink()
    out = own_workflow.snakemake("figures", "--dry-run")
    assert "rule figures" in out.stdout and "rule tables" not in out.stdout and "rule interpolate" not in out.stdout
    own_workflow.snakemake("figures")
    assert all(png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for png in figures)


def test_report_gathers_the_figures_and_tables(workflow, tmp_path):
    workflow.snakemake("--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text(errors="replace")
    for name in (*FIGURES, "barriers.md", "fidelity.parquet"):
        assert name in html, name


TRACKED = ("data", "zoo", "encoders", "merge", "fidelity", "finetune", "generate", "tables", "figures")
"""The results DVC versions (downloads and logs are not)."""


def test_a_second_run_from_scratch_gives_the_same_bytes(own_workflow):
    """Same config and seed on the CPU: every tracked output byte-identical (DVC stores nothing new)."""

    def snapshot() -> dict[str, bytes]:
        files = (p for d in TRACKED for p in (own_workflow.root / "results" / d).rglob("*") if p.is_file())
        return {str(p.relative_to(own_workflow.root)): p.read_bytes() for p in files}

    first = snapshot()
    own_workflow.snakemake("all", "--forceall")
    second = snapshot()
    assert first.keys() == second.keys()
    timed = {f"results/{name}" for name in TIMED}  # wall-clock seconds: compared without them below
    timed |= {name for name in first if name.startswith(("results/finetune/", "results/generate/"))
              and name.endswith("summary.json")}  # fmt: skip
    differ = sorted(name for name in first if first[name] != second[name] and name not in timed)
    assert not differ, f"outputs that differ between two identical runs: {differ}"
    import io

    import polars as pl

    tables = [pl.read_parquet(io.BytesIO(run["results/tables/finetune.parquet"])) for run in (first, second)]
    assert tables[0].drop(TIME_COLUMNS).equals(tables[1].drop(TIME_COLUMNS))
