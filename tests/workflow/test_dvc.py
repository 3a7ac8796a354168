"""Versioned artifacts: dvc.yaml wraps the Snakemake stage groups, and results round-trip through a remote.

On config/test.yaml (its archives served on loopback, as in test_workflow.py), in a scratch git repository
holding a copy of this working tree: `dvc repro`, `dvc push` to a temporary remote, a fresh `git clone`,
scripts/pull-results.sh there; then Snakemake has nothing to do, a config edit re-runs only its jobs, the
figures come back from the pulled tables alone, and `dvc metrics show` / `dvc plots show` read the results.

The repository and its clone are built once (module fixtures) and only read by the tests; a test that changes
files or re-runs stages does it on its own copy of the clone (``own_clone``), so the tests pass in any order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.workflow.conftest import ROOT, make_workflow

TEST_ZOOS = set(yaml.safe_load((ROOT / "config/test.yaml").read_text())["zoos"])
"""The zoos of config/test.yaml (classifier zoos and an INR zoo): one metrics row and one plot series each."""

TIMEOUT = 900
END_TO_END_TIMEOUT = 3600
"""A test that asks for the repository or the clone first waits for `dvc repro`, `dvc push` and the pull (each
command up to TIMEOUT)."""
STAGES = ["data", "zoos", "encoders", "predict", "finetune", "merge", "generate", "report"]
NOTHING_TO_DO = "Nothing to be done"


def _env(root: Path, tmp: Path) -> dict[str, str]:
    """The environment of every command: this interpreter's tools, the repository's own `src`, no DVC daemons."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),  # the `symzoo` the rules call is the copy's (or the clone's) own
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site-cache"),
        "GIT_AUTHOR_NAME": "symzoo test",
        "GIT_AUTHOR_EMAIL": "test@symzoo.invalid",
        "GIT_COMMITTER_NAME": "symzoo test",
        "GIT_COMMITTER_EMAIL": "test@symzoo.invalid",
    }


@dataclass
class Repo:
    """A git + DVC repository of the workflow, with the served test config chosen in its dvc.yaml."""

    root: Path
    config: str  # relative to root
    tmp: Path

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            cmd, cwd=self.root, env=_env(self.root, self.tmp), capture_output=True, text=True, timeout=TIMEOUT
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` failed in {self.root}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def snakemake(self, *args: str, config: Path | str | None = None) -> subprocess.CompletedProcess:
        return self.run(
            sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile", str(config or self.config)
        )

    def copy(self, dest: Path) -> Repo:
        """A copy of this repository at ``dest`` (work tree, git and DVC state, results and Snakemake's records,
        file times kept): for a test that changes what it finds, leaving this one as it was."""
        shutil.copytree(self.root, dest, symlinks=True)
        return Repo(dest, self.config, self.tmp)


def _copy_working_tree(dest: Path) -> None:
    """The working tree's tracked and untracked-but-not-ignored files (uncommitted edits included)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():  # tracked files deleted in the working tree are skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    for needed in ("dvc.yaml", ".dvc/config", ".dvcignore", "scripts/pull-results.sh"):
        if not (dest / needed).is_file():
            pytest.fail(f"{needed} is missing from the working tree (or git-ignored): the round trip needs it")


def _choose_config(dvc_yaml: Path, config: str) -> None:
    """Point dvc.yaml's `vars: - config:` at ``config``: the documented way to run another config."""
    text, n = re.subn(r"(?m)^(\s*-\s*config:\s*)\S+", rf"\g<1>{config}", dvc_yaml.read_text(), count=1)
    if n != 1:
        pytest.fail("dvc.yaml has no `vars: - config: FILE` line to choose the config with")
    dvc_yaml.write_text(text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Repo:
    """A git repository with this working tree, the served test config chosen, `dvc repro` run and pushed."""
    from tests.fixtures.http import LoopbackServer

    tmp = tmp_path_factory.mktemp("dvc")
    remote = tmp / "remote"
    repo = Repo(tmp / "repo", "config/test-served.yaml", tmp)
    repo.root.mkdir()
    _copy_working_tree(repo.root)
    with LoopbackServer(tmp_path_factory.mktemp("www")) as server:
        served = make_workflow(tmp / "served", server)  # writes the test config with the served archive urls
        shutil.copy(served.config, repo.root / repo.config)
        _choose_config(repo.root / "dvc.yaml", repo.config)
        repo.run("git", "init", "-q")
        repo.run("git", "add", "-A")
        repo.run("git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "workflow on the served test config")
        # a temporary default remote (config.local is not committed); the project's own stays untouched
        repo.dvc("remote", "add", "--local", "--default", "tmp", str(remote))
        repo.dvc("repro")
    repo.run("git", "add", "dvc.lock")
    repo.run("git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "results")
    repo.dvc("push")
    return repo


@pytest.fixture(scope="module")
def clone(scratch, tmp_path_factory) -> Repo:
    """A fresh `git clone` of the scratch repository, with its results fetched by scripts/pull-results.sh."""
    dest = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(scratch.root), str(dest)], check=True, timeout=TIMEOUT)
    repo = Repo(dest, scratch.config, scratch.tmp)
    assert not (dest / "results").exists() and not (dest / ".snakemake").exists()
    repo.dvc("remote", "add", "--local", "--default", "tmp", str(scratch.tmp / "remote"))
    repo.run("bash", "scripts/pull-results.sh")
    return repo


@pytest.fixture
def own_clone(clone, tmp_path) -> Repo:
    """This test's own copy of the pulled clone, to change as it likes."""
    return clone.copy(tmp_path / "repo")


def test_dag_runs_the_stage_groups_in_order(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "dag", "--dot"],
        cwd=ROOT,
        env=_env(ROOT, tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    edges = set(re.findall(r'"(\w+)" -> "(\w+)"', proc.stdout))
    assert {("data", "zoos"), ("zoos", "encoders"), ("encoders", "merge"), ("merge", "report")} <= edges
    assert {("encoders", "predict"), ("predict", "report")} <= edges
    assert {("zoos", "finetune"), ("finetune", "report"), ("merge", "generate"), ("generate", "report")} <= edges
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(stages) == STAGES
    for name, stage in stages.items():
        assert re.fullmatch(rf"snakemake --cores all {name} --configfile \$\{{config\}}", stage["cmd"])
        for out in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            assert isinstance(out, dict) and next(iter(out.values())).get("persist") is True, out


def test_default_remote_is_a_local_directory_in_the_users_cache(tmp_path):
    # the committed url is `~/...`: DVC expands it for whoever runs it
    show = "from dvc.repo import Repo; c = Repo('.').config; print(c['remote'][c['core']['remote']]['url'])"
    env = {**_env(ROOT, tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / ".cache/symzoo/dvc-remote")
    assert "~/.cache/symzoo/dvc-remote" in (ROOT / ".dvc/config").read_text()


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_repro_builds_every_stage_and_leaves_snakemake_nothing_to_do(scratch):
    lock = yaml.safe_load((scratch.root / "dvc.lock").read_text())["stages"]
    assert list(lock) == STAGES
    assert all(stage["cmd"].endswith(f"--configfile {scratch.config}") for stage in lock.values())
    assert {p.name for p in (scratch.root / "results/tables/metrics").iterdir()} == {"cnn.json", "mlp.json", "inr.json"}
    assert NOTHING_TO_DO in scratch.snakemake("all", "--dry-run").stdout
    assert "up to date" in scratch.dvc("status").stdout


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_pull_brings_every_output_and_snakemake_has_nothing_to_do(scratch, clone):
    for path in (
        "results/data",
        "results/zoo",
        "results/encoders",
        "results/merge",
        "results/fidelity",
        "results/predict",
        "results/finetune",
        "results/generate",
        "results/tables",
    ):
        ours = sorted(p.relative_to(scratch.root) for p in (scratch.root / path).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(clone.root) for p in (clone.root / path).rglob("*") if p.is_file())
        assert ours == theirs and ours, path
    assert (clone.root / "results/tables/metrics/mlp.json").read_bytes() == (
        scratch.root / "results/tables/metrics/mlp.json"
    ).read_bytes()
    out = clone.snakemake("all", "--dry-run")
    assert NOTHING_TO_DO in out.stdout, out.stdout + out.stderr
    assert "up to date" in clone.dvc("status").stdout


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_a_config_edit_after_pull_reruns_only_its_jobs(clone, tmp_path):
    # the touch recorded every job's params: an edited entry re-runs its jobs, and only those
    cfg = yaml.safe_load((clone.root / clone.config).read_text())
    cfg["zoos"]["cnn"]["min_accuracy"] = 0.2
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    text = clone.snakemake("all", "--dry-run", config=edited).stdout
    assert "rule smallcnnzoo" in text and "rule dataset" not in text and "rule zoo_shard" not in text, text


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_a_clean_clone_plans_every_stage(scratch, tmp_path):
    # `dvc repro --dry` alone fails on missing upstream outputs (treeverse/dvc#9818); `--force` plans them all
    dest = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(scratch.root), str(dest)], check=True, timeout=TIMEOUT)
    out = Repo(dest, scratch.config, scratch.tmp).dvc("repro", "--dry", "--force").stdout
    assert re.findall(r"^Running stage '(\w+)'", out, flags=re.M) == STAGES, out
    for stage in STAGES:
        assert f"snakemake --cores all {stage} --configfile {scratch.config}" in out
    assert not (dest / "results").exists()


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_metrics_show_a_row_per_zoo_and_diff_the_barrier_summary(own_clone):
    path = own_clone.root / "results/tables/metrics/mlp.json"
    pulled = path.read_bytes()
    metrics = json.loads(pulled)
    assert {"loss_barrier", "score_barrier", "endpoint_dist"} <= set(metrics["naive"])  # task-neutral names
    assert "kl" in metrics["fidelity_test"]["ae_scalegmn"]
    out = own_clone.dvc("metrics", "show").stdout
    rows = [line for line in out.splitlines() if line.startswith("results/tables/metrics/")]
    assert len(rows) == len(TEST_ZOOS) and "naive.loss_barrier" in out, out  # one row per zoo
    assert re.search(r"\d+\.\d+", out), out
    try:  # what a re-run that changes a barrier shows: the committed value (from the cache) against the new one
        metrics["naive"]["loss_barrier"] = 123.5
        path.write_text(json.dumps(metrics))
        diff = own_clone.dvc("metrics", "diff").stdout
        assert "naive.loss_barrier" in diff and "123.5" in diff, diff
    finally:
        path.write_bytes(pulled)
    assert own_clone.dvc("metrics", "diff").stdout.strip() == ""


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_plots_show_the_interpolation_curves_and_figures(clone, tmp_path):
    plots = json.loads(clone.dvc("plots", "show", "--json", "--out", str(tmp_path / "plots")).stdout)["data"]
    for plot_id in ("interpolation_loss", "interpolation_score"):
        (plot,) = plots[plot_id]
        assert plot["type"] == "vega", plot
        data = plot["content"]["data"]["values"]
        methods = {"naive", "rebasin", "align_reference", "medoid", "ae_scalegmn", "ae_align_scalegmn"}
        assert {row["method"] for row in data} == methods
        assert {row["zoo"] for row in data} == TEST_ZOOS
    for name in ("interpolation", "orbit", "training", "fidelity", "merge_many"):
        assert plots[f"results/figures/{name}.png"][0]["type"] == "image"


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_figures_regenerate_from_the_pulled_tables_alone(own_clone):
    for png in (own_clone.root / "results/figures").glob("*.png"):
        png.unlink()
    out = own_clone.snakemake("figures", "--forcerun", "figures", "--dry-run").stdout
    jobs = set(re.findall(r"^rule (\w+):", out, flags=re.M))
    assert jobs == {"figures"}, out
    own_clone.snakemake("figures", "--forcerun", "figures")
    for name in ("interpolation", "orbit", "training", "fidelity"):
        assert (own_clone.root / f"results/figures/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.timeout(END_TO_END_TIMEOUT)
def test_params_are_the_config_sections_each_stage_reads(own_clone):
    """`dvc exp run -S <file>:<key>=<value>` runs the experiment, `dvc params diff` shows the change."""
    key = f"{own_clone.config}:merge.alphas"
    own_clone.dvc("exp", "run", "-S", f"{key}=3")
    diff = own_clone.dvc("params", "diff").stdout
    assert re.search(r"merge\.alphas\s+5\s+3", diff), diff
    status = own_clone.dvc("status").stdout
    assert "results/data" not in status  # only the stages that read the merge section were re-run
    table = own_clone.dvc("exp", "show", "--no-pager", "--md").stdout
    assert "merge.alphas" in table, table
