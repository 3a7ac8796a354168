"""Run the real Snakemake workflow on config/test.yaml, in a scratch directory, offline.

The test config names tiny archives in the exact upstream formats, built by the fixtures (``python -m
tests.fixtures``); the DVC and cluster tests serve them from a loopback HTTP server instead. Everything else
(rules, schema, CLI) is the repository's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.fixtures.__main__ import build as build_fixtures
from tests.fixtures.cifar import make_cifar_archive
from tests.fixtures.smallcnnzoo import make_small_cnn_zoo_archive

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Workflow:
    """A scratch copy of the workflow (links to the repository's Snakefile, rules and configs)."""

    root: Path
    config: Path

    def copy(self, dest: Path) -> Workflow:
        """A copy of this workflow directory at ``dest``, results and Snakemake's records included (file times
        kept, so the copy is as up to date as this one): for a test that changes what it finds, leaving the shared
        one as it was."""
        shutil.copytree(self.root, dest, symlinks=True)
        return Workflow(dest, dest / self.config.relative_to(self.root))

    def snakemake(self, *args: str, config: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", str(config or self.config)]
        proc = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc


def make_workflow(root: Path, server=None) -> Workflow:
    """Link the workflow into ``root``. Without ``server``: config/test.yaml as it is, offline, with its archives
    built into ``root/results/fixtures`` (``python -m tests.fixtures``); with one: a copy of it whose archives
    are served by ``server`` (downloads over HTTP)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config"):
        (root / name).symlink_to(ROOT / name)
    if server is None:
        build_fixtures(root / "results" / "fixtures")
        return Workflow(root, root / "config" / "test.yaml")
    md5 = make_cifar_archive(server.root / "cifar-10-python.tar.gz", n_per_batch=40)
    make_small_cnn_zoo_archive(server.root / "cifar10.tar.xz", n_runs=60)
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["datasets"]["cifar10gs"] |= {"url": server.url("cifar-10-python.tar.gz"), "md5": md5}
    cfg["zoos"]["cnn"]["url"] = server.url("cifar10.tar.xz")
    config = root / "test-served.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return Workflow(root, config)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Workflow:
    """The offline test workflow (config/test.yaml as shipped), run once to completion (shared by the module's
    tests, which only read it: a test that deletes or re-runs anything takes ``own_workflow``)."""
    wf = make_workflow(tmp_path_factory.mktemp("wf"))
    wf.snakemake("all")
    return wf


@pytest.fixture
def own_workflow(workflow, tmp_path) -> Workflow:
    """This test's own copy of the completed workflow, to change as it likes."""
    return workflow.copy(tmp_path / "wf")
