"""The workflow's lint and formatting (fast: nothing runs; the workflow itself runs in test_workflow.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.workflow.conftest import ROOT


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
