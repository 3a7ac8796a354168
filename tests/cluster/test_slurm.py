"""The workflow on a real SLURM cluster through the submitit executor and the ``slurm`` profile.

Needs a cluster (tests/cluster/slurm-up.sh brings up a one-node one with 2 fake GPUs; see conftest.py).
The end-to-end run builds config/test.yaml's image sets and zoos (rules dataset, smallcnnzoo, zoo_shard,
zoo_merge); the tiny rules of tiny.smk exercise failure, Ctrl-C and the time-limit signal.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from symzoo.data.images import load_image_set
from symzoo.data.zoo import read_zoo
from tests.cluster.conftest import HERE, isolate, sacct, snakemake
from tests.workflow.conftest import make_workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]

SUBMITTED = re.compile(r"Job \S+ \((\w+)\) submitted as SLURM job (\d+)")
PROFILE = yaml.safe_load((HERE.parents[1] / "slurm" / "config.yaml").read_text())


@dataclass
class Run:
    """A finished ``snakemake --profile slurm`` run."""

    root: Path
    config: dict
    proc: subprocess.CompletedProcess

    @property
    def text(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @property
    def jobs(self) -> dict[str, str]:
        """SLURM job id -> rule, from Snakemake's log."""
        return {job_id: rule for rule, job_id in SUBMITTED.findall(self.text)}

    def submitit_dir(self, job_id: str) -> Path:
        return self.root / ".snakemake" / "submitit" / job_id


def tiny(root: Path, target: str, background: bool = False):
    """Build ``target`` of tests/cluster/tiny.smk in ``root`` with the slurm profile."""
    (root / "slurm").symlink_to(HERE.parents[1] / "slurm")
    return snakemake(root, "--snakefile", str(HERE / "tiny.smk"), target, background=background)


def submitted(root: Path) -> list[str]:
    """The SLURM job ids a background run has logged so far."""
    return [job_id for _, job_id in SUBMITTED.findall((root / "snakemake.out").read_text())]


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` seconds or when ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def e2e(slurm_cluster, tmp_path_factory) -> Run:
    """config/test.yaml's whole pipeline (``all``) run on SLURM (archives served on loopback, as in tests/workflow)."""
    from tests.fixtures.http import LoopbackServer

    with LoopbackServer(tmp_path_factory.mktemp("www")) as server:
        wf = make_workflow(tmp_path_factory.mktemp("slurm-e2e"), server)
        config = yaml.safe_load(wf.config.read_text())
        isolate(wf.root, config)
        proc = snakemake(wf.root, "all", "--configfile", str(wf.config))
        yield Run(wf.root, config, proc)


def test_end_to_end_every_job_goes_through_slurm(e2e):
    assert e2e.proc.returncode == 0, e2e.text
    for name in e2e.config["datasets"]:
        assert len(load_image_set(e2e.root / f"results/data/{name}.npz").x_train) > 0
    for name in e2e.config["zoos"]:
        assert len(read_zoo(e2e.root / f"results/zoo/{name}")) > 0
    assert (e2e.root / "results/figures/interpolation.png").is_file()

    jobs = e2e.jobs
    expected = {"dataset", "smallcnnzoo", "zoo_shard", "zoo_merge", "encoder", "pairs", "canonicalize"}
    expected |= {"interpolate", "orbit", "tables", "figures"}
    assert set(jobs.values()) == expected, e2e.text
    for job_id in jobs:  # submitit's logs name the SLURM job they ran in
        logs = e2e.submitit_dir(job_id)
        assert (
            f"job_id={job_id}"
            in (logs / f"{job_id}_0_log.err").read_text() + (logs / f"{job_id}_0_log.out").read_text()
        )
    records = sacct(*jobs)
    assert {r["JobID"] for r in records} == set(jobs)
    for record in records:
        assert record["State"] == "COMPLETED", records
        assert record["JobName"].startswith(f"smk-{jobs[record['JobID']]}-"), records


def test_resources_map_to_sbatch_and_gpu_rules_get_a_gpu(e2e):
    assert e2e.proc.returncode == 0, e2e.text
    gpu_nodes = {
        line.split()[0]
        for line in subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %G"], capture_output=True, text=True
        ).stdout.splitlines()
        if "gpu" in line
    }
    records = {r["JobID"]: r for r in sacct(*e2e.jobs, fields="JobID,State,AllocTRES,NodeList")}
    defaults = PROFILE["default-resources"]
    for job_id, rule in e2e.jobs.items():
        resources = defaults | PROFILE["set-resources"].get(rule, {})
        script = (e2e.submitit_dir(job_id) / f"{job_id}_submission.sh").read_text()
        directives = ["--requeue", "--signal=USR2@90", "--cpus-per-task=1", f"--mem={resources['mem_mb']}M"]
        for directive in [*directives, f"--time={resources['runtime']}"]:
            assert f"#SBATCH {directive}\n" in script, script
        if resources.get("gpu"):
            assert f"#SBATCH --gpus-per-node={resources['gpu']}\n" in script, script
            assert f"gres/gpu={resources['gpu']}" in records[job_id]["AllocTRES"], records[job_id]
            assert records[job_id]["NodeList"] in gpu_nodes
        else:
            assert "--gpus-per-node" not in script, script
            assert "gres/gpu" not in records[job_id]["AllocTRES"], records[job_id]
    assert "zoo_shard" in {rule for rule in e2e.jobs.values() if PROFILE["set-resources"].get(rule, {}).get("gpu")}


def test_a_failing_job_fails_the_workflow_and_names_its_logs(tmp_path):
    run = Run(tmp_path, {}, tiny(tmp_path, "never.txt"))
    assert run.proc.returncode != 0, run.text
    [(job_id, rule)] = run.jobs.items()
    assert rule == "fail"
    err_log = run.submitit_dir(job_id) / f"{job_id}_0_log.err"
    assert "Error in rule fail" in run.text and f"SLURM job {job_id}" in run.text
    assert "logs/fail.log" in run.text and str(err_log) in run.text, run.text
    assert err_log.is_file() and "failing on purpose" in (tmp_path / "logs/fail.log").read_text()
    assert sacct(job_id)[0]["State"] == "FAILED"


def test_ctrl_c_cancels_the_running_jobs(tmp_path):
    proc = tiny(tmp_path, "slept.txt", background=True)
    try:
        wait_until((tmp_path / "sleeping.txt").exists, 120, "the job to run", proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    [job_id] = submitted(tmp_path)
    # slurmdbd records the cancellation a little later than slurmctld acts on it (slower on a fresh cluster)
    wait_until(lambda: sacct(job_id)[0]["State"].startswith("CANCELLED"), 180, f"SLURM job {job_id} cancelled")


def test_the_time_limit_signal_checkpoints_and_requeues_the_job(tmp_path):
    """SLURM sends USR2 signal_seconds before the time limit (or on preemption): the job requeues itself."""
    proc = tiny(tmp_path, "second-run.txt", background=True)
    try:
        wait_until((tmp_path / "first-run.txt").exists, 120, "the job's first run", proc)
        [job_id] = submitted(tmp_path)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # as SLURM does at the time limit
        assert proc.wait(timeout=240) == 0, (tmp_path / "snakemake.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "second run" in (tmp_path / "logs/two_runs.log").read_text()  # the first run left first-run.txt
    out = (tmp_path / ".snakemake/submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert "Calling checkpoint method" in out and f"Requeued job {job_id}" in out, out
    assert [r["State"] for r in sacct(job_id, duplicates=True)] == ["REQUEUED", "COMPLETED"]


EPOCHS = 600  # ~20-30 s of training on one core


def test_a_requeued_training_job_resumes_from_its_checkpoint(tmp_path):
    config = {
        "seed": 0,
        "device": "cpu",
        "datasets": {"digits": {"source": "digits"}},
        "zoos": {
            "long": {
                "source": "generate",
                "dataset": "digits",
                "arch": {"kind": "mlp", "widths": [8, 8], "activation": "tanh"},
                "num_models": 6,
                "batch_models": 6,
                "epochs": EPOCHS,
                "checkpoints": [EPOCHS // 2, EPOCHS],
                "min_accuracy": 0.0,
            }
        },
    }
    shard = "results/zoo/long/shards/0000"
    on_slurm, reference = tmp_path / "slurm-run", tmp_path / "local-run"
    config_file = isolate(on_slurm, config)
    slurm = snakemake(on_slurm, f"{shard}/params.npy", "--configfile", str(config_file), background=True)
    # the same shard trained without interruption, locally (one thread, as Snakemake runs the SLURM job)
    local = snakemake(
        reference,
        "--cores",
        "1",
        f"{shard}/params.npy",
        "--configfile",
        str(isolate(reference, config)),
        profile=None,
        background=True,
    )
    try:
        state = on_slurm / f"{shard}.state.pt"
        wait_until(state.exists, 180, "the shard's first epoch on SLURM", slurm)
        time.sleep(2)  # some epochs further
        out = on_slurm / "snakemake.out"
        [job_id] = [j for rule, j in SUBMITTED.findall(out.read_text()) if rule == "zoo_shard"]
        assert state.exists(), "the shard finished before it could be requeued: raise EPOCHS"
        subprocess.run(["scontrol", "requeue", job_id], check=True)  # it starts again after AuthInfo cred_expire
        assert slurm.wait(timeout=300) == 0, out.read_text()
        assert local.wait(timeout=300) == 0, (reference / "snakemake.out").read_text()
    finally:
        for proc in (slurm, local):
            if proc.poll() is None:
                proc.kill()

    log = (on_slurm / "results/logs/zoo/long/shard-0000.log").read_text()
    resumed = re.search(r"resuming \S+ from epoch (\d+)", log)
    assert resumed and 0 < int(resumed.group(1)) < EPOCHS, log
    states = [r["State"] for r in sacct(job_id, duplicates=True)]
    assert states == ["REQUEUED", "COMPLETED"], states
    assert np.array_equal(np.load(on_slurm / shard / "params.npy"), np.load(reference / shard / "params.npy"))
    assert pl.read_parquet(on_slurm / shard / "models.parquet").equals(
        pl.read_parquet(reference / shard / "models.parquet")
    )
