"""Fixtures for the tests on a real SLURM cluster (``@pytest.mark.cluster``).

The cluster is the one-node cluster of ``tests/cluster/slurm-up.sh`` (or any cluster this machine submits to).
When none answers: under CI (``CI`` set) the session brings one up with slurm-up.sh, and fails if that fails;
elsewhere the tests are skipped, saying how to bring one up.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.workflow.conftest import ROOT

HERE = Path(__file__).resolve().parent
# poll SLURM every second or two (the executor's defaults suit real clusters, not tests)
POLL_ARGS = ("--submitit-poll-seconds", "1", "--submitit-max-poll-seconds", "2")
TEST_QOS = "symzoo-test"


def cluster_problem() -> str | None:
    """Why this machine cannot run SLURM jobs now, or None when it can."""
    if shutil.which("sbatch") is None:
        return "no SLURM client (sbatch) on PATH"
    checks = (["scontrol", "ping"], ["sinfo", "-h", "-o", "%T"], ["sacct", "-n", "-X", "-S", "now"])
    for cmd in checks:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`{' '.join(cmd)}`: {error}"
        first_line = ((proc.stderr or proc.stdout).strip().splitlines() or [""])[0]
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {first_line}"
        if cmd[0] == "scontrol" and "is UP" not in proc.stdout:
            return f"slurmctld is not up: {first_line}"
        if cmd[0] == "sinfo" and not any(s in proc.stdout for s in ("idle", "mixed", "allocated")):
            return f"no usable node: {proc.stdout.strip() or 'none'}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A SLURM cluster that accepts jobs (brought up by slurm-up.sh under CI, else the tests are skipped)."""
    problem = cluster_problem()
    if problem is None:
        return
    if not os.environ.get("CI"):
        pytest.skip(f"no SLURM cluster ({problem}); bring one up with `sudo bash tests/cluster/slurm-up.sh`")
    proc = subprocess.run(["bash", str(HERE / "slurm-up.sh")], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or (problem := cluster_problem()) is not None:
        pytest.fail(f"tests/cluster/slurm-up.sh did not bring a cluster up ({problem}):\n{proc.stdout}\n{proc.stderr}")


def isolate(root: Path, config: dict) -> Path:
    """Make ``root`` a workflow directory (links to the Snakefile, rules and the ``slurm`` profile) whose
    config/config.yaml is ``config``. Returns the config file to pass as ``--configfile``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "slurm"):
        if not (root / name).exists():
            (root / name).symlink_to(ROOT / name)
    if (root / "config").is_symlink():
        (root / "config").unlink()
    (root / "config").mkdir(exist_ok=True)
    path = root / "config" / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def test_qos(slurm_cluster) -> str:
    """A QOS for the tests (created with sacctmgr if missing, and granted to this user)."""
    existing = subprocess.run(["sacctmgr", "-n", "-P", "show", "qos", "format=name"], capture_output=True, text=True)
    if TEST_QOS not in existing.stdout.split():
        subprocess.run(["sacctmgr", "-i", "add", "qos", TEST_QOS], check=True, capture_output=True, timeout=60)
    # needed where the cluster enforces associations (AccountingStorageEnforce); harmless elsewhere
    user = getpass.getuser()
    subprocess.run(["sacctmgr", "-i", "modify", "user", user, "set", f"qos+={TEST_QOS}"], capture_output=True)
    return TEST_QOS


def snakemake(root: Path, *args: str, timeout: float = 600, background: bool = False, profile: str | None = "slurm"):
    """``python -m snakemake --profile slurm ARGS`` in ``root``, polling SLURM every second or two.

    ``profile=None``: a plain local run. Returns the CompletedProcess, or with ``background`` the Popen
    (output to ``root/snakemake.out``).
    """
    cmd = [sys.executable, "-m", "snakemake"]
    if profile is not None:
        cmd += ["--profile", profile, *POLL_ARGS]
    cmd += args
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if background:
        with (root / "snakemake.out").open("w") as out:
            return subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def sacct(*job_ids: str, fields: str = "JobID,JobName,State", duplicates: bool = False) -> list[dict[str, str]]:
    """SLURM's accounting records of ``job_ids`` (``sacct -X``), one dict per record."""
    cmd = ["sacct", "-X", "-n", "-P", "-o", fields, "-j", ",".join(job_ids)] + (["-D"] if duplicates else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    names = fields.split(",")
    return [dict(zip(names, line.split("|"))) for line in out.splitlines() if line]
