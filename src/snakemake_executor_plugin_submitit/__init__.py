"""Snakemake executor plugin that submits every job to SLURM through submitit.

Select it with ``snakemake --executor submitit`` (or ``executor: submitit`` in a profile, see ``slurm/``).
Each Snakemake job becomes one submitit job: an sbatch script that runs a small picklable callable,
:class:`~snakemake_executor_plugin_submitit.job.JobCommand`, which runs the job's ``python -m snakemake ...``
command line on the node with OMP_NUM_THREADS / MKL_NUM_THREADS set to the job's CPUs.

- Resources map to sbatch options as in the official ``snakemake-executor-plugin-slurm`` (see
  :func:`~snakemake_executor_plugin_submitit.sbatch.sbatch_parameters`); ``slurm_extra`` may add other
  options but not override the executor's own.
- Job names carry the rule and wildcard values (``canonicalize-cnn-rebasin``), comments the rule and
  wildcards (``rule=canonicalize zoo=cnn method=rebasin``). Jobs of one rule with the same options that are
  ready together go as one SLURM array (submitit's ``executor.batch()``), at most MaxArraySize per array.
- Every job is submitted with ``--requeue`` and ``--signal=USR2@<signal_seconds>``. On that signal (time
  limit near, or preemption) submitit calls ``JobCommand.checkpoint``: the command is stopped and the job
  requeued; it then runs again and the workflow's stages resume from their own checkpoints. After
  ``--submitit-max-requeues`` requeues at the time limit the job fails, reported as TIMEOUT.
- Status: sacct for all active jobs in one call, squeue for those sacct does not know, at an interval that
  starts at ``--submitit-poll-seconds`` and grows while nothing changes. A job whose state stays unknown for
  ``--submitit-status-timeout`` seconds fails. Failures name the SLURM state (TIMEOUT, OUT_OF_MEMORY,
  NODE_FAIL, PREEMPTED, CANCELLED, ...), the job's limits and its logs.
- Logs: ``<folder>/<rule>/<SLURM job id>/``; a successful job's folder is deleted (unless
  ``--submitit-keep-successful-logs``), a failed one's kept. At the end, an efficiency summary per rule.
- ``Ctrl-C`` cancels all active jobs with one ``scancel``.
"""

# no `from __future__ import annotations`: Snakemake reads the settings' field types (bool flags) at runtime
import os
import re
import shutil
import subprocess
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
from submitit.slurm.slurm import SlurmJob

from .efficiency import query_usage, summary_lines
from .job import JobCommand
from .sbatch import (
    describe_limits,
    job_cluster,
    job_comment,
    job_cpus,
    job_name,
    parse_slurm_extra,
    resource_warnings,
    sbatch_parameters,
)
from .status import PollInterval, StatusError, Verdict, Watch, query_states

__all__ = [
    "Executor",
    "ExecutorSettings",
    "JobCommand",
    "array_batches",
    "common_settings",
    "parse_slurm_extra",
    "remove_leftovers",
    "sbatch_parameters",
]

DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    """Settings of the submitit executor (command line ``--submitit-<name>``, or a profile key)."""

    poll_seconds: float = field(
        default=10.0,
        metadata={
            "help": "Seconds between status polls after a change (one sacct call for all active jobs); "
            "the interval grows by half while nothing changes, up to --submitit-max-poll-seconds.",
            "type": float,
        },
    )
    max_poll_seconds: float = field(
        default=120.0,
        metadata={"help": "Longest interval between status polls (seconds).", "type": float},
    )
    status_timeout: float = field(
        default=600.0,
        metadata={
            "help": "Seconds a job may stay unknown to both sacct and squeue (e.g. while they fail) before it "
            "counts as failed.",
            "type": float,
        },
    )
    folder: str = field(
        default=".snakemake/submitit",
        metadata={
            "help": "Folder of submitit's files: <folder>/<rule>/<SLURM job id>/ holds the sbatch script and logs.",
            "type": str,
        },
    )
    signal_seconds: int = field(
        default=90,
        metadata={
            "help": "Seconds before the time limit at which SLURM signals the job to checkpoint and requeue "
            "(a job's runtime must exceed it).",
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
    keep_successful_logs: bool = field(
        default=False,
        metadata={"help": "Keep the submitit folders of successful jobs too (default: only failed jobs')."},
    )
    no_arrays: bool = field(
        default=False,
        metadata={"help": "Submit every job on its own, never as part of a SLURM array."},
    )
    no_efficiency_report: bool = field(
        default=False,
        metadata={"help": "Do not print the per-rule efficiency summary (from sacct) at the end."},
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


def max_array_size() -> int:
    """How many jobs one SLURM array may hold (``MaxArraySize``: indices 0 to MaxArraySize - 1)."""
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_MAX_ARRAY_SIZE


Batch = list[tuple[JobExecutorInterface, dict[str, Any]]]


def array_batches(ready: Batch, size: int) -> list[Batch]:
    """Jobs (with their sbatch parameters) in submissions: those of one rule with the same parameters together,
    at most ``size`` per submission (one SLURM array); a group job alone."""
    groups: dict[tuple[str, str], Batch] = {}
    for job, params in ready:
        key = (job.name, str(job.jobid) if job.is_group() else repr(params))
        groups.setdefault(key, []).append((job, params))
    return [group[start : start + size] for group in groups.values() for start in range(0, len(group), size)]


def wildcards_of(job: JobExecutorInterface) -> dict[str, str]:
    """A single job's wildcards (a group job: none)."""
    return {} if job.is_group() else {key: str(value) for key, value in getattr(job, "wildcards_dict", {}).items()}


def read_result(job: SlurmJob) -> tuple[str, Any] | None:
    """submitit's ``(outcome, value)`` once the job's command has finished, else None."""
    path = job.paths.result_pickle
    if not path.exists():
        return None
    try:
        return submitit_utils.pickle_load(path)
    except (EOFError, OSError):
        return None  # being written


@dataclass
class Submission:
    """What the executor keeps about one submitted job (``SubmittedJobInfo.aux["submission"]``)."""

    job: SlurmJob
    rule: str
    params: Mapping[str, Any]
    watch: Watch

    @property
    def array_id(self) -> str | None:
        """The SLURM array this job is a task of (None: a plain job)."""
        parent, underscore, _ = self.job.job_id.partition("_")
        return parent if underscore else None


class Executor(RemoteExecutor):
    """Snakemake's side: submits jobs with submitit, polls them with sacct / squeue, cancels them with scancel."""

    def __post_init__(self) -> None:
        self.settings: ExecutorSettings = self.workflow.executor_settings or ExecutorSettings()
        if not submitit.SlurmExecutor.affinity() > 0:
            raise WorkflowError("submitit executor: no SLURM here (srun not found on PATH)")
        self.folder = Path(self.settings.folder).absolute()
        self.interval = PollInterval(self.settings.poll_seconds, self.settings.max_poll_seconds)
        self.next_seconds_between_status_checks = self.interval.current
        self.array_size = 1 if self.settings.no_arrays else max_array_size()
        # SLURM ids of the jobs not yet seen finished. Snakemake hands cancel_jobs only the jobs in its active
        # list, which is empty while a status check runs: Ctrl-C then would cancel nothing. This set is never
        # emptied that way.
        self.unfinished: set[str] = set()
        self.rules: dict[str, str] = {}  # SLURM id -> rule, of every job submitted in this run
        self.clusters: set[str] = set()  # --clusters the jobs went to
        self.array_tasks_left: dict[str, int] = {}  # SLURM array id -> its tasks not yet successful
        self.warned: set[tuple[str, str]] = set()
        self.status_problem: str | None = None
        self.shut_down = False

    # --- submission --------------------------------------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        self.run_jobs([job])

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        """Submit the jobs Snakemake has selected; those of one rule with the same options as SLURM arrays."""
        self.next_seconds_between_status_checks = self.interval.reset()
        ready = []
        for job in jobs:
            self.run_job_pre(job)
            try:
                ready.append((job, self._parameters(job)))
            except WorkflowError as error:
                self.report_job_error(
                    SubmittedJobInfo(job), msg=f"Job {job.jobid} ({job.name}) not submitted: {error}. "
                )
        for batch in array_batches(ready, self.array_size):
            self._submit(batch)

    def _parameters(self, job: JobExecutorInterface) -> dict[str, Any]:
        """The job's sbatch parameters; warns (once per rule and key) about ignored resources."""
        params = sbatch_parameters(job.resources, job.threads, signal_seconds=self.settings.signal_seconds)
        warnings = resource_warnings(job.resources)
        if params["time"] * 60 < self.settings.signal_seconds + 60:
            warnings["runtime"] = (
                f"runtime={params['time']} min leaves under a minute before the checkpoint signal "
                f"(--submitit-signal-seconds={self.settings.signal_seconds}); SLURM may send it up to 60 s early, "
                "so the job may be checkpointed and requeued as soon as it starts"
            )
        for key, warning in warnings.items():
            if (job.name, key) not in self.warned:
                self.warned.add((job.name, key))
                self.logger.warning(f"rule {job.name}: {warning}")
        return params

    def _submit(self, batch: Batch) -> None:
        """Submit jobs of one rule with the same parameters: one job, or one array of them."""
        jobs = [job for job, _ in batch]
        rule = jobs[0].name if not jobs[0].is_group() else f"group-{jobs[0].name}"
        wildcards = [wildcards_of(job) for job in jobs]
        params = {**batch[0][1], "job_name": job_name(rule, wildcards), "comment": job_comment(rule, wildcards)}
        executor = submitit.SlurmExecutor(folder=self.folder / rule / "%j", max_num_timeout=self.settings.max_requeues)
        executor.update_parameters(**params)
        # the command gets half the signal's lead time to stop before the job is requeued
        grace = max(5, self.settings.signal_seconds // 2)
        commands = [
            JobCommand(self.format_job_exec(job), cwd=os.getcwd(), threads=job_cpus(params), term_grace_seconds=grace)
            for job in jobs
        ]
        try:
            submitted = self._sbatch(executor, commands)
        except (submitit_utils.FailedJobError, submitit_utils.FailedSubmissionError, OSError) as error:
            for job in jobs:
                self.report_job_error(SubmittedJobInfo(job), msg=f"sbatch failed for {params['job_name']}: {error}. ")
            return
        if len(submitted) > 1:
            array_id = submitted[0].job_id.partition("_")[0]
            self.array_tasks_left[array_id] = len(submitted)
            self.logger.info(f"{len(submitted)} jobs of rule {rule} submitted as SLURM array {array_id}")
        if cluster := job_cluster(params):
            self.clusters.add(cluster)
        for job, slurm_job in zip(jobs, submitted):
            self._register(job, Submission(slurm_job, rule, params, self._watch()))

    @staticmethod
    def _sbatch(executor: submitit.SlurmExecutor, commands: list[JobCommand]) -> list[SlurmJob]:
        """Submit ``commands``: one sbatch call, an array when there are several."""
        if len(commands) == 1:
            return [executor.submit(commands[0])]
        with executor.batch():
            jobs = [executor.submit(command) for command in commands]
        return jobs

    def _watch(self) -> Watch:
        return Watch(status_timeout=self.settings.status_timeout, max_requeues=self.settings.max_requeues)

    def _register(self, job: JobExecutorInterface, submission: Submission) -> None:
        slurm_id = submission.job.job_id
        self.logger.info(
            f"Job {job.jobid} ({submission.rule}) submitted as SLURM job {slurm_id}: {submission.job.paths.stdout}"
        )
        self.unfinished.add(slurm_id)
        self.rules[slurm_id] = submission.rule
        self.report_job_submission(SubmittedJobInfo(job, external_jobid=slurm_id, aux={"submission": submission}))

    # --- status ------------------------------------------------------------------------------------------

    def cluster_args(self) -> list[str]:
        """``--clusters=all`` for sacct / squeue / scancel once a job went to a named cluster."""
        return ["--clusters=all"] if self.clusters else []

    async def check_active_jobs(self, active_jobs: list[SubmittedJobInfo]) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        async with self.status_rate_limiter:
            states, problem = query_states([info.external_jobid for info in active_jobs], self.cluster_args())
        self._note_status_problem(problem)
        now = time.monotonic()
        changed = False
        for job_info in active_jobs:
            submission: Submission = job_info.aux["submission"]
            verdict = submission.watch.verdict(read_result(submission.job), states.get(job_info.external_jobid), now)
            if verdict is None:
                yield job_info
                continue
            changed = True
            self.unfinished.discard(job_info.external_jobid)
            if verdict.success:
                self.report_job_success(job_info)
                self._forget_logs(submission)
            else:
                self._report_failure(job_info, verdict)
        self.next_seconds_between_status_checks = self.interval.reset() if changed else self.interval.grow()

    def _note_status_problem(self, problem: str | None) -> None:
        """Warn when status queries start failing, and say when they work again."""
        if problem and not self.status_problem:
            self.logger.warning(f"SLURM status query failed, falling back to squeue: {problem}")
        elif self.status_problem and not problem:
            self.logger.info("SLURM status queries work again")
        self.status_problem = problem

    def _report_failure(self, job_info: SubmittedJobInfo, verdict: Verdict) -> None:
        """Fail the Snakemake job, naming the SLURM state, the job's limits, its submitit logs and rule logs."""
        submission: Submission = job_info.aux["submission"]
        if verdict.state == "UNKNOWN":  # it may still run somewhere: do not leave it behind
            self._scancel([job_info.external_jobid])
            verdict = Verdict(verdict.state, f"{verdict.detail}; last query problem: {self.status_problem or 'none'}")
        jobs = job_info.job.jobs if job_info.job.is_group() else [job_info.job]
        rule_logs = " ".join(str(log) for job in jobs for log in job.log) or "(none)"
        logs = [str(submission.job.paths.stdout), str(submission.job.paths.stderr)]
        msg = (
            f"SLURM job {submission.job.job_id} ended {verdict.describe()}. "
            f"Limits: {describe_limits(submission.params)}. "
            f"submitit logs: {' '.join(logs)}; rule log: {rule_logs}. "
        )
        self.report_job_error(job_info, msg=msg, aux_logs=logs)

    # --- logs, cancellation, end of run ------------------------------------------------------------------

    def _forget_logs(self, submission: Submission) -> None:
        """Delete a successful job's submitit folder (and its array's, once all its tasks succeeded)."""
        if self.settings.keep_successful_logs:
            return
        shutil.rmtree(submission.job.paths.folder, ignore_errors=True)
        if (array_id := submission.array_id) is not None:
            self.array_tasks_left[array_id] -= 1
            if self.array_tasks_left[array_id] == 0:
                shutil.rmtree(submission.job.paths.folder.parent / array_id, ignore_errors=True)

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        ids = {job_info.external_jobid for job_info in active_jobs if job_info.external_jobid} | self.unfinished
        self._scancel(sorted(ids))

    def _scancel(self, ids: list[str]) -> None:
        if ids:
            subprocess.run(["scancel", *self.cluster_args(), *ids], check=False, timeout=60)

    def shutdown(self) -> None:
        super().shutdown()
        if self.shut_down:
            return
        self.shut_down = True
        if self.rules and not self.settings.no_efficiency_report:
            self._print_efficiency()
        remove_leftovers(self.folder)

    def _print_efficiency(self) -> None:
        try:
            usages = query_usage(sorted(self.rules), self.cluster_args())
        except StatusError as error:
            self.logger.warning(f"No efficiency summary: {error}")
            return
        if usages:
            self.logger.info("\n".join(summary_lines(usages, self.rules)))


def remove_leftovers(folder: Path) -> None:
    """Remove submitit's links to deleted job folders (``.submission_file_*.sh``) and empty rule folders."""
    if not folder.is_dir():
        return
    for rule_folder in folder.iterdir():
        if not rule_folder.is_dir() or rule_folder.is_symlink():
            continue
        for link in rule_folder.glob(".submission_file_*.sh"):
            if link.is_symlink() and not link.exists():
                link.unlink()
        if not any(rule_folder.iterdir()):
            rule_folder.rmdir()
