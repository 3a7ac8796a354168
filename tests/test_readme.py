"""The README's commands: every `symzoo` command it names exists, every `snakemake` command it shows plans (a dry
run in a scratch copy of the workflow), every file it points at exists. The set-up and test commands are what CI
runs (.ci/run), the pipeline itself runs in tests/workflow, the DVC commands in tests/workflow/test_dvc.py and
the cluster commands in tests/cluster."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from symzoo.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SPANS = re.findall(r"`([^`\n]+)`", README)


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_command = next(b.strip() for b in blocks if b.strip().endswith("pytest"))
    assert test_command in (ROOT / ".ci/run").read_text()


def test_every_symzoo_command_named_exists():
    named = {m.group(1) for span in SPANS if (m := re.match(r"symzoo (?:--\S+ (?:\S+ )?)*([a-z][a-z-]+)", span))}
    named -= {"<stage>"}
    assert named and named <= set(COMMANDS), sorted(named - set(COMMANDS))
    for name in COMMANDS:
        assert f"symzoo {name}" in README or name in README, f"`symzoo {name}` is not in the README"


def test_every_path_named_exists():
    paths = {span for span in SPANS if re.fullmatch(r"(config|scripts|workflow|docs|tests|src|slurm)/[\w./-]+", span)}
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert paths and not missing, missing


DRY_RUNS = [
    span
    for span in SPANS
    if span.startswith("snakemake ")
    and "<" not in span
    and not any(flag in span for flag in ("--profile", "--lint", "--unlock", "--touch", "--report"))
]


@pytest.mark.parametrize("command", DRY_RUNS)
def test_readme_snakemake_commands_plan(command, tmp_path):
    for name in ("Snakefile", "workflow", "config"):
        (tmp_path / name).symlink_to(ROOT / name)
    args = shlex.split(command)[1:]
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
