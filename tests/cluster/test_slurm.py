"""The submitit executor (and the official SLURM plugin) on a real SLURM cluster, with the ``slurm`` profile.

Needs a cluster (tests/cluster/slurm-up.sh brings up a one-node one with 2 fake GPUs; see conftest.py).
Most tests run the tiny rules of tiny.smk (one to four jobs each): arrays, names, limits, failures, Ctrl-C,
requeues. The others run the real workflow: config/test.yaml's image sets and zoos, and a zoo shard requeued
mid-training.
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

from symzoo.data.zoo import read_zoo
from tests.cluster.conftest import HERE, isolate, sacct, snakemake
from tests.workflow.conftest import make_workflow

# slow: SLURM jobs and real workflow runs; the first test may wait for slurm-up.sh (up to 900 s, under CI)
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.usefixtures("slurm_cluster"),
]

SUBMITTED = re.compile(r"Job (\d+) \((\S+)\) submitted as SLURM job (\d+(?:_\d+)?)")
OFFICIAL_SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")
# for the real workflow's rules that do not declare these (yet); a rule's own declaration wins
FALLBACK_RESOURCES = ("--default-resources", "runtime=30", "mem_mb=2000")


@dataclass
class Run:
    """A finished snakemake run."""

    root: Path
    proc: subprocess.CompletedProcess

    @property
    def text(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @property
    def jobs(self) -> dict[str, str]:
        """SLURM job id -> rule, from the executor's log."""
        return {job_id: rule for _, rule, job_id in SUBMITTED.findall(self.text)}

    def rule_jobs(self, rule: str) -> list[str]:
        return [job_id for job_id, name in self.jobs.items() if name == rule]

    def folder(self, job_id: str) -> Path:
        """The job's submitit folder (sbatch script, pickles, logs)."""
        return self.root / ".snakemake" / "submitit" / self.jobs[job_id] / job_id


def link_profile(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "slurm").exists():
        (root / "slurm").symlink_to(HERE.parents[1] / "slurm")


def run_tiny(root: Path, *args: str) -> Run:
    """Run tests/cluster/tiny.smk in ``root`` with the slurm profile; ``args``: targets and options."""
    link_profile(root)
    return Run(root, snakemake(root, "--snakefile", str(HERE / "tiny.smk"), *args))


def start_tiny(root: Path, *args: str) -> subprocess.Popen:
    """:func:`run_tiny` in the background (output to ``root/snakemake.out``)."""
    link_profile(root)
    return snakemake(root, "--snakefile", str(HERE / "tiny.smk"), *args, background=True)


def submitted(root: Path) -> list[str]:
    """The SLURM job ids a background run has logged so far."""
    return [job_id for _, _, job_id in SUBMITTED.findall((root / "snakemake.out").read_text())]


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` seconds or when ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def tres(text: str) -> dict[str, str]:
    """sacct's ``cpu=1,mem=100M,gres/gpu=1`` as a dict."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def scontrol_job(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout


# --- tiny workflows ---------------------------------------------------------------------------------------


def test_same_rule_jobs_go_as_one_array_and_only_failed_jobs_keep_their_logs(tmp_path):
    run = run_tiny(tmp_path, "--keep-going", *(f"greetings/{who}.txt" for who in "abc"), "never.txt")
    assert run.proc.returncode != 0, run.text

    greet = run.rule_jobs("greet")
    assert len(greet) == 3 and len({job_id.split("_")[0] for job_id in greet}) == 1, run.jobs
    records = sacct(*greet, fields="JobID,JobName,Comment,State")
    assert [r["State"] for r in records] == ["COMPLETED"] * 3, records
    assert {r["JobName"] for r in records} == {"greet-*"}, records
    comment = records[0]["Comment"]  # the array's: each task's wildcards, by task index
    assert comment.startswith("rule=greet [0] who=") and "[2] who=" in comment, records
    assert all(f"who={who}" in comment for who in "abc"), records
    # every job runs with the thread variables set to its one CPU
    assert _greetings(tmp_path, "abc") == [f"{who} 1 1" for who in "abc"]
    assert not (tmp_path / ".snakemake/submitit/greet").exists()  # successful: logs deleted

    [fail] = run.rule_jobs("fail")
    err_log = run.folder(fail) / f"{fail}_0_log.err"
    assert err_log.is_file() and "failing on purpose" in (tmp_path / "logs/fail.log").read_text()
    assert f"SLURM job {fail} ended FAILED: its command exited with code 1" in run.text, run.text
    assert "Limits: runtime 5 min, memory 100 MB, 1 CPU" in run.text
    assert "logs/fail.log" in run.text and str(err_log) in run.text, run.text
    assert sacct(fail)[0]["State"] == "FAILED"

    summary = run.text[run.text.index("SLURM efficiency (sacct), per rule:") :].splitlines()
    assert summary[1].split()[:2] == ["rule", "jobs"], summary
    assert summary[2].split()[:2] == ["fail", "1"] and summary[3].split()[:2] == ["greet", "3"], summary


def _greetings(root: Path, names: str) -> list[str]:
    return [(root / f"greetings/{who}.txt").read_text().strip() for who in names]


def test_job_names_and_comments_carry_the_wildcards(tmp_path):
    run = run_tiny(tmp_path, "greetings/d.txt", "greetings/e.txt", "--submitit-no-arrays", "--set-threads", "greet=2")
    assert run.proc.returncode == 0, run.text
    records = sacct(*run.jobs, fields="JobID,JobName,Comment,NCPUS")
    assert sorted((r["JobName"], r["Comment"], r["NCPUS"]) for r in records) == [
        ("greet-d", "rule=greet who=d", "2"),
        ("greet-e", "rule=greet who=e", "2"),
    ], records
    assert _greetings(tmp_path, "de") == ["d 2 2", "e 2 2"]  # OMP_NUM_THREADS, MKL_NUM_THREADS: the job's CPUs


def test_a_job_over_its_time_limit_is_reported_as_timeout_with_its_limit(tmp_path):
    # no requeue: the first checkpoint signal before the one-minute limit ends the job
    run = run_tiny(tmp_path, "--submitit-signal-seconds", "10", "--submitit-max-requeues", "0", "overtime.txt")
    assert run.proc.returncode != 0, run.text
    [job_id] = run.jobs
    assert f"SLURM job {job_id} ended TIMEOUT: it reached its time limit" in run.text, run.text
    assert "Limits: runtime 1 min, memory 100 MB" in run.text, run.text
    assert (run.folder(job_id) / f"{job_id}_0_log.err").is_file()


def test_mem_per_cpu_and_qos_reach_sbatch(tmp_path, test_qos):
    run = run_tiny(tmp_path, "--submitit-keep-successful-logs", "per_cpu.txt")
    assert run.proc.returncode == 0, run.text
    [job_id] = run.jobs
    script = (run.folder(job_id) / f"{job_id}_submission.sh").read_text()  # kept: --submitit-keep-successful-logs
    assert "#SBATCH --mem-per-cpu=150M\n" in script and f"#SBATCH --qos={test_qos}\n" in script, script
    assert "#SBATCH --mem=" not in script, script
    assert "MinMemoryCPU=150M" in scontrol_job(job_id)
    assert sacct(job_id, fields="JobID,QOS,State")[0] == {"JobID": job_id, "QOS": test_qos, "State": "COMPLETED"}


def test_a_conflicting_slurm_extra_is_refused(tmp_path):
    run = run_tiny(tmp_path, "conflict.txt")
    assert run.proc.returncode != 0, run.text
    assert "slurm_extra: --job-name is not allowed here" in run.text, run.text
    assert not run.jobs and not (tmp_path / "conflict.txt").exists()


def _rule_of(comment: str) -> str:
    """The rule in a job comment: ``rule=greet who=h`` (submitit executor), ``rule_greet_wildcards_h`` (official)."""
    found = re.match(r"rule=(\S+)|rule_(.+?)(?:_wildcards_.*)?$", comment)
    assert found, comment
    return found.group(1) or found.group(2)


@pytest.mark.parametrize("executor", ["submitit", "slurm"])
def test_either_executor_gives_the_jobs_the_resources_their_rules_declare(tmp_path, executor):
    """The profile holds only site settings; the rules' threads and resources reach SLURM with either plugin."""
    official = ("--executor", "slurm", "--slurm-init-seconds-before-status-checks", "1") if executor == "slurm" else ()
    run = run_tiny(tmp_path, *official, "greetings/h.txt", "gpu.txt")
    assert run.proc.returncode == 0, run.text
    job_ids = OFFICIAL_SUBMITTED.findall(run.text) if executor == "slurm" else list(run.jobs)
    records = sacct(*job_ids, fields="JobID,Comment,TimelimitRaw,ReqTRES,State")
    declared = {
        "greet": {"cpu": "1", "mem": "100M", "gres/gpu": None},
        "gpu": {"cpu": "1", "mem": "120M", "gres/gpu": "1"},
    }
    assert sorted(_rule_of(r["Comment"]) for r in records) == ["gpu", "greet"], records
    for record in records:
        requested, expected = tres(record["ReqTRES"]), declared[_rule_of(record["Comment"])]
        assert {key: requested.get(key) for key in expected} == expected, record
        assert (record["TimelimitRaw"], record["State"]) == ("5", "COMPLETED"), record


def test_ctrl_c_cancels_the_running_jobs(tmp_path):
    proc = start_tiny(tmp_path, "slept.txt")
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
    proc = start_tiny(tmp_path, "--submitit-keep-successful-logs", "second-run.txt")
    try:
        wait_until((tmp_path / "first-run.txt").exists, 120, "the job's first run", proc)
        [job_id] = submitted(tmp_path)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # as SLURM does at the time limit
        assert proc.wait(timeout=240) == 0, (tmp_path / "snakemake.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "second run" in (tmp_path / "logs/two_runs.log").read_text()  # the first run left first-run.txt
    out = (tmp_path / ".snakemake/submitit/two_runs" / job_id / f"{job_id}_0_log.out").read_text()
    assert "Calling checkpoint method" in out and f"Requeued job {job_id}" in out, out
    assert [r["State"] for r in sacct(job_id, duplicates=True)] == ["REQUEUED", "COMPLETED"]


# --- the real workflow ------------------------------------------------------------------------------------


def snakemake_resources(text: str) -> dict[str, tuple[int, dict[str, str]]]:
    """Snakemake jobid -> (threads, resources), from the job descriptions Snakemake logs."""
    jobs = {}
    for block in re.split(r"^(?:local)?rule \w+:$", text, flags=re.MULTILINE)[1:]:
        jobid = re.search(r"^\s+jobid: (\d+)$", block, re.MULTILINE)
        listed = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
        if jobid and listed:
            threads = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
            resources = dict(item.partition("=")[::2] for item in listed.group(1).split(", "))
            jobs[jobid.group(1)] = (int(threads.group(1)) if threads else 1, resources)
    return jobs


@pytest.fixture(scope="module")
def e2e(slurm_cluster, tmp_path_factory) -> Run:
    """config/test.yaml's ``zoos`` stage (image sets, zoos) run on SLURM (archives served on loopback, as in
    tests/workflow; the whole pipeline runs there, locally)."""
    from tests.fixtures.http import LoopbackServer

    with LoopbackServer(tmp_path_factory.mktemp("www")) as server:
        wf = make_workflow(tmp_path_factory.mktemp("slurm-e2e"), server)
        isolate(wf.root, yaml.safe_load(wf.config.read_text()))
        args = ("zoos", "--configfile", str(wf.config), "--submitit-keep-successful-logs", *FALLBACK_RESOURCES)
        yield Run(wf.root, snakemake(wf.root, *args))


def test_end_to_end_every_job_goes_through_slurm(e2e):
    assert e2e.proc.returncode == 0, e2e.text
    config = yaml.safe_load((e2e.root / "config/config.yaml").read_text())
    for name in config["zoos"]:
        assert len(read_zoo(e2e.root / f"results/zoo/{name}")) > 0

    jobs = e2e.jobs
    assert set(jobs.values()) == {"dataset", "smallcnnzoo", "inr_zoo", "zoo_shard", "zoo_merge"}, e2e.text
    for job_id in jobs:  # submitit's logs name the SLURM job they ran in
        logs = e2e.folder(job_id)
        text = (logs / f"{job_id}_0_log.err").read_text() + (logs / f"{job_id}_0_log.out").read_text()
        assert f"job_id={job_id}" in text, job_id
    records = sacct(*jobs)
    assert {r["JobID"] for r in records} == set(jobs)
    for record in records:
        assert record["State"] == "COMPLETED", records
        assert record["JobName"].startswith(jobs[record["JobID"]]), records


def test_each_jobs_threads_and_resources_reach_sbatch(e2e):
    assert e2e.proc.returncode == 0, e2e.text
    declared = snakemake_resources(e2e.text)
    records = {r["JobID"]: r for r in sacct(*e2e.jobs, fields="JobID,AllocTRES")}
    for jobid, rule, job_id in SUBMITTED.findall(e2e.text):
        threads, resources = declared[jobid]
        submission = e2e.folder(job_id).parent / job_id.partition("_")[0] / f"{job_id.partition('_')[0]}_submission.sh"
        script = submission.read_text()
        directives = ["--requeue", "--signal=USR2@90", f"--cpus-per-task={threads}", f"--time={resources['runtime']}"]
        directives += [f"--mem={resources['mem_mb']}M"] if "mem_mb" in resources else []
        gpus = int(resources.get("gpu", 0))
        directives += [f"--gpus={gpus}"] if gpus else []
        for directive in directives:
            assert f"#SBATCH {directive}\n" in script, (rule, directive, script)
        assert (f"gres/gpu={gpus}" in records[job_id]["AllocTRES"]) == bool(gpus), (rule, records[job_id])


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
    args = (f"{shard}/params.npy", "--configfile", str(config_file), *FALLBACK_RESOURCES)
    slurm = snakemake(on_slurm, *args, background=True)
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
        [job_id] = [j for _, rule, j in SUBMITTED.findall(out.read_text()) if rule == "zoo_shard"]
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
