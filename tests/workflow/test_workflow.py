"""The Snakemake workflow end to end on config/test.yaml, plus lint and formatting."""

from __future__ import annotations

import subprocess
import sys

import yaml

from symzoo.data.images import load_image_set
from symzoo.data.zoo import read_zoo
from tests.workflow.conftest import ROOT


def test_all_builds_every_target(workflow):
    cfg = yaml.safe_load(workflow.config.read_text())
    for name in cfg["datasets"]:
        images = load_image_set(workflow.root / f"results/data/{name}.npz")
        assert len(images.x_train) > 0
    assert load_image_set(workflow.root / "results/data/cifar10gs.npz").input_shape == (1, 8, 8)
    zoo = read_zoo(workflow.root / "results/zoo/cnn")
    assert zoo.spec.num_params == 4970 and len(zoo.ids("train")) > 0
    assert zoo.meta["dataset"] == "cifar10gs" and len(zoo.meta["source"]["sha256"]) == 64
    assert (workflow.root / "results/logs/zoo/cnn.log").read_text()


def test_second_run_has_nothing_to_do(workflow):
    out = workflow.snakemake("all", "--dry-run", "--quiet")
    assert "Nothing to be done" in out.stdout + out.stderr or out.stdout.strip() == ""


def test_editing_one_entry_reruns_only_its_jobs(workflow):
    cfg = yaml.safe_load(workflow.config.read_text())
    cfg["zoos"]["cnn"]["min_accuracy"] = 0.2
    edited = workflow.root / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    out = workflow.snakemake("all", "--dry-run", config=edited)
    text = out.stdout + out.stderr
    assert "smallcnnzoo" in text and "rule dataset" not in text


def test_a_bad_config_key_is_named(workflow, tmp_path):
    cfg = yaml.safe_load(workflow.config.read_text())
    cfg["zoos"]["cnn"]["min_acuracy"] = 0.2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = workflow.snakemake("all", "--dry-run", config=bad, check=False)
    assert out.returncode != 0 and "min_acuracy" in out.stdout + out.stderr


def test_lint_only_recommends_a_software_environment():
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    text = out.stdout + out.stderr
    lints = {line.strip()[2:].rstrip(":") for line in text.splitlines() if line.startswith("    * ")}
    assert "Lints for rule" in text  # the linter ran and reported per rule
    assert lints == {"Specify a conda environment or container for each rule."}, text


def test_snakefmt_clean():
    out = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
