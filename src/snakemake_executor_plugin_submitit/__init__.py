"""Snakemake executor plugin that submits every job to SLURM through submitit.

Select it with ``snakemake --executor submitit`` (or ``executor: submitit`` in a profile, see ``slurm/``).
Each Snakemake job becomes one submitit job: an sbatch script that runs a small picklable callable,
:class:`JobCommand`, which runs the job's ``python -m snakemake ...`` command line on the node.

Rule resources map to sbatch options:

==================  ===============================  =========================================
resource            sbatch                           note
==================  ===============================  =========================================
``threads``         ``--cpus-per-task``              the rule's threads
``mem_mb``          ``--mem=<mem_mb>M``              also ``mem`` (Snakemake converts it)
``runtime``         ``--time=<minutes>``             required (e.g. profile default-resources)
``gpu``             ``--gpus-per-node``              0 or unset: no GPU
``gres``            ``--gres``                       e.g. ``gpu:a100:1``
``slurm_partition`` ``--partition``                  empty string: cluster default
``slurm_account``   ``--account``                    empty string: user default
``constraint``      ``--constraint``
``slurm_extra``     raw extra flags                  e.g. ``"--qos=high --exclusive"``
==================  ===============================  =========================================

Every job is submitted with ``--requeue`` and ``--signal=USR2@<signal_seconds>``. On that signal (time
limit near, or preemption) submitit calls :meth:`JobCommand.checkpoint`: the running command is stopped
with SIGTERM and the job requeued with ``scontrol requeue``; the command then runs again from the start and
the workflow's stages resume from their own checkpoints (e.g. ``results/zoo/<zoo>/shards/<i>.state.pt``).
A job that SLURM itself requeues (``scontrol requeue``, node failure, preemption) reruns the same way.

Status: one ``sacct`` call per poll covers all active jobs (submitit's shared watcher), every
``--submitit-poll-seconds`` seconds. ``Ctrl-C`` cancels all active jobs with one ``scancel``. A failed job
fails the workflow with its SLURM state, its submitit stdout / stderr files and the rule's log files.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings, ExecutorSettingsBase
from submitit.core import utils as submitit_utils
from submitit.slurm.slurm import SlurmJob, SlurmJobEnvironment

__all__ = ["Executor", "ExecutorSettings", "JobCommand", "common_settings", "sbatch_parameters"]

# sacct states of jobs that are not over (submitit's list)
_ACTIVE_STATES = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED", "CONFIGURING"}


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    """Settings of the submitit executor (command line ``--submitit-<name>``, or a profile key)."""

    poll_seconds: float = field(
        default=10.0,
        metadata={"help": "Seconds between status polls (one sacct call for all active jobs).", "type": float},
    )
    folder: str = field(
        default=".snakemake/submitit",
        metadata={
            "help": "Folder of submitit's files: <folder>/<SLURM job id>/ holds the sbatch script and logs.",
            "type": str,
        },
    )
    signal_seconds: int = field(
        default=90,
        metadata={
            "help": "Seconds before the time limit at which SLURM signals the job to checkpoint and requeue.",
            "type": int,
        },
    )
    max_requeues: int = field(
        default=3,
        metadata={
            "help": "How many times a job that reaches its time limit is requeued (preemptions: unlimited).",
            "type": int,
        },
    )


common_settings = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=False,
    job_deploy_sources=False,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # sbatch exports the submitting environment; nothing needs to be spelled out in the command
    pass_envvar_declarations_to_cmd=False,
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=1,
)


_PR_SET_CHILD_SUBREAPER = 36

# The job command running in this (job-side) process, for the checkpoint signal handler.
_running: subprocess.Popen | None = None


class JobCommand(submitit.helpers.Checkpointable):
    """A Snakemake job's command line, run by submitit on the node (picklable; checkpointable).

    The command runs in its own process group, so that it can be stopped as a whole (the shell, Snakemake
    and the rule's processes); its output goes to the submitit log files, and a non-zero exit fails the
    submitit job. When SLURM ends the job (SIGTERM: cancellation, or a requeue by SLURM), this process stops
    the command and leaves without a result, so that the rerun of a requeued job is never mistaken for the
    end of the interrupted one.
    """

    def __init__(self, command: str, cwd: str, term_grace_seconds: float = 60.0) -> None:
        self.command = command
        self.cwd = cwd
        self.term_grace_seconds = term_grace_seconds

    def __call__(self) -> None:
        global _running
        # a requeued job runs again under the same id: drop the previous run's result, if any
        submitit.JobEnvironment().paths.result_pickle.unlink(missing_ok=True)
        _become_subreaper()
        terminated = False

        def on_sigterm(signum: int, frame: Any) -> None:
            nonlocal terminated
            terminated = True

        signal.signal(signal.SIGTERM, on_sigterm)
        preempt = SlurmJobEnvironment._usr_sig()
        handler = signal.signal(preempt, signal.SIG_IGN)  # inherited by the command: only we checkpoint
        try:
            _running = subprocess.Popen(["/bin/sh", "-c", self.command], cwd=self.cwd, start_new_session=True)
        finally:
            signal.signal(preempt, handler)
        returncode = _running.wait()
        if returncode == 0:
            return
        if terminated:  # SLURM is cancelling or requeueing this job
            _stop_group(_running.pid, self.term_grace_seconds)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signal.SIGTERM)
        raise RuntimeError(f"Snakemake job command exited with code {returncode}: {self.command}")

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Stop the running command (SIGTERM to its process group, SIGKILL after ``term_grace_seconds``).

        Called by submitit's signal handler before it requeues the job, which then runs this same command
        again; the workflow's stages resume from their own checkpoints.
        """
        if _running is not None:
            _stop_group(_running.pid, self.term_grace_seconds)
        return super().checkpoint(*args, **kwargs)


def _become_subreaper() -> None:
    """Adopt our orphaned descendants (Linux), so that :func:`_stop_group` can reap them and see them gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _stop_group(pgid: int, seconds: float) -> None:
    """SIGTERM process group ``pgid``, wait up to ``seconds`` for it to end, then SIGKILL what is left.

    Polls (no blocking wait): this may run in a signal handler that interrupted ``Popen.wait``.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            _reap_children()
            os.killpg(pgid, 0)  # ProcessLookupError once the whole group is gone
            time.sleep(0.2)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap_children() -> None:
    """Collect every child of ours that has exited (the command's shell, adopted orphans)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def parse_slurm_extra(extra: str) -> dict[str, str | bool]:
    """``"--qos=high --exclusive --comment 'a b'"`` as submitit's ``additional_parameters``."""
    params: dict[str, str | bool] = {}
    tokens = shlex.split(extra)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) == 2:
            raise WorkflowError(f"slurm_extra: expected long sbatch options (--name[=value]), got {token!r}")
        name, eq, value = token[2:].partition("=")
        if eq:
            params[name] = value
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            params[name] = tokens[i + 1]
            i += 1
        else:
            params[name] = True
        i += 1
    return params


def sbatch_parameters(
    resources: Mapping[str, Any], threads: int, name: str, signal_seconds: int = 90
) -> dict[str, Any]:
    """submitit ``SlurmExecutor`` parameters for a job's resources (see the module docstring)."""

    def text(key: str) -> str | None:
        value = resources.get(key)
        return str(value) if value not in (None, "") else None

    runtime = resources.get("runtime")
    if runtime in (None, ""):
        raise WorkflowError(
            f"{name}: no runtime resource (minutes); set one, e.g. default-resources: runtime=60 in the profile"
        )
    params: dict[str, Any] = {
        "job_name": name,
        "time": int(runtime),
        "cpus_per_task": int(threads),
        "signal_delay_s": signal_seconds,
        "partition": text("slurm_partition"),
        "account": text("slurm_account"),
        "constraint": text("constraint"),
        "gres": text("gres"),
        "additional_parameters": {"requeue": True, **parse_slurm_extra(text("slurm_extra") or "")},
    }
    if resources.get("mem_mb") not in (None, ""):
        params["mem"] = f"{int(resources['mem_mb'])}M"
    if int(resources.get("gpu") or 0) > 0:
        params["gpus_per_node"] = int(resources["gpu"])
    return {key: value for key, value in params.items() if value is not None}


class Executor(RemoteExecutor):
    """Snakemake's side: submits jobs with submitit, polls them with sacct, cancels them with scancel."""

    def __post_init__(self) -> None:
        self.settings: ExecutorSettings = self.workflow.executor_settings or ExecutorSettings()
        if not submitit.SlurmExecutor.affinity() > 0:
            raise WorkflowError("submitit executor: no SLURM here (srun not found on PATH)")
        self.folder = Path(self.settings.folder).absolute()
        self.next_seconds_between_status_checks = self.settings.poll_seconds
        # SLURM ids of the jobs not yet seen finished. Snakemake hands cancel_jobs only the jobs in its active
        # list, which is empty while a status check runs: Ctrl-C then would cancel nothing. This set is never
        # emptied that way.
        self.unfinished: set[str] = set()

    def run_job(self, job: JobExecutorInterface) -> None:
        name = f"smk-{job.name}-{job.jobid}"
        executor = submitit.SlurmExecutor(folder=self.folder / "%j", max_num_timeout=self.settings.max_requeues)
        executor.update_parameters(
            **sbatch_parameters(job.resources, job.threads, name, signal_seconds=self.settings.signal_seconds)
        )
        # the command gets half the signal's lead time to stop before the job is requeued
        grace = max(5, self.settings.signal_seconds // 2)
        command = JobCommand(self.format_job_exec(job), cwd=os.getcwd(), term_grace_seconds=grace)
        try:
            submitted = executor.submit(command)
        except (submitit_utils.FailedJobError, submitit_utils.FailedSubmissionError) as error:
            raise WorkflowError(f"sbatch failed for {name}: {error}") from error
        self.logger.info(
            f"Job {job.jobid} ({job.name}) submitted as SLURM job {submitted.job_id}: {submitted.paths.stdout}"
        )
        self.unfinished.add(submitted.job_id)
        self.report_job_submission(SubmittedJobInfo(job, external_jobid=submitted.job_id, aux={"job": submitted}))

    async def check_active_jobs(self, active_jobs: list[SubmittedJobInfo]) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        async with self.status_rate_limiter:
            SlurmJob.watcher.update()  # one sacct call for every registered, unfinished job
        for job_info in active_jobs:
            submitted: SlurmJob = job_info.aux["job"]
            outcome = _result(submitted)
            state = SlurmJob.watcher.get_state(submitted.job_id, mode="cache")
            if outcome is None and state.split()[0].upper() in _ACTIVE_STATES:
                yield job_info
                continue
            self.unfinished.discard(submitted.job_id)
            if outcome == "success" or (outcome is None and state.startswith("COMPLETED")):
                self.report_job_success(job_info)
            elif outcome == "error":
                self._report_error(job_info, "failed: its command exited with an error")
            else:
                self._report_error(job_info, f"ended {state}")

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        ids = {job_info.external_jobid for job_info in active_jobs if job_info.external_jobid} | self.unfinished
        if ids:
            subprocess.run(["scancel", *sorted(ids)], check=False, timeout=60)

    def _report_error(self, job_info: SubmittedJobInfo, what: str) -> None:
        """Fail the Snakemake job, naming the SLURM job's submitit logs and the rule's log files."""
        submitted: SlurmJob = job_info.aux["job"]
        jobs = job_info.job.jobs if job_info.job.is_group() else [job_info.job]
        rule_logs = " ".join(str(log) for job in jobs for log in job.log) or "(none)"
        logs = [str(submitted.paths.stdout), str(submitted.paths.stderr)]
        msg = f"SLURM job {submitted.job_id} {what}. submitit logs: {' '.join(logs)}; rule log: {rule_logs}. "
        self.report_job_error(job_info, msg=msg, aux_logs=logs)


def _result(job: SlurmJob) -> str | None:
    """``"success"`` or ``"error"`` once the job's command has finished, else None (from submitit's result file)."""
    path = job.paths.result_pickle
    if not path.exists():
        return None
    try:
        outcome, _ = submitit_utils.pickle_load(path)
    except (EOFError, OSError):
        return None  # being written
    return outcome
