"""SLURM job states (``sacct``, with ``squeue`` as the fallback) and what they mean for a Snakemake job.

:func:`query_states` asks ``sacct`` for the jobs' states and ``squeue`` for those ``sacct`` does not know (just
submitted, or ``sacct`` failing). :class:`Watch` turns what is known of one job (submitit's result file, its
SLURM state) into a :class:`Verdict` once the job is over, and gives up on a job whose state stays unknown.
:class:`PollInterval` spaces the polls: short after a change, growing while nothing happens.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from submitit.slurm.slurm import read_job_id

from .job import TIMED_OUT_TOO_MANY_TIMES

# States of jobs that are over (any other state: still pending, running, requeued, suspended, ...)
TERMINAL_STATES = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "REVOKED", "TIMEOUT",
}  # fmt: skip
# What each failed state says about the job, for the error message.
MEANINGS = {
    "TIMEOUT": "it reached its time limit",
    "OUT_OF_MEMORY": "it ran out of memory (its memory limit)",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted and not requeued",
    "CANCELLED": "it was cancelled (scancel, an administrator, or SLURM)",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it reached its deadline",
    "REVOKED": "it was revoked (federation)",
    "FAILED": "",  # the detail says how
    "UNKNOWN": "its state could not be learned",
}
# States that may still turn into a requeue, and a failed command whose SLURM record is not final yet, are
# given this long to settle before they count as final.
SETTLE_SECONDS = 60.0
QUERY_TIMEOUT_SECONDS = 60
_CHUNK = 500  # job ids per sacct call


class StatusError(RuntimeError):
    """A SLURM query command failed (its message names the command)."""


def run_query(command: Sequence[str]) -> str:
    """The stdout of a SLURM query command; :class:`StatusError` when it fails or hangs."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StatusError(f"`{' '.join(command[:2])} ...`: {error}") from error
    if proc.returncode != 0:
        first_line = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[0]
        raise StatusError(f"`{' '.join(command[:2])} ...` failed: {first_line}")
    return proc.stdout


def parse_states(output: str) -> dict[str, str]:
    """``"<job id>|<state>"`` lines (sacct -P, squeue -o '%i|%T') as job id -> state.

    Array ids are expanded: ``123_[2-4%256]|PENDING`` gives ``123_2``, ``123_3``, ``123_4``. A state such as
    ``CANCELLED by 0`` is reduced to its first word.
    """
    states: dict[str, str] = {}
    for line in output.splitlines():
        job_id, sep, rest = line.strip().partition("|")
        if not sep or not job_id or "." in job_id or not rest.strip():
            continue
        state = rest.split("|")[0].split()[0].upper()
        for parts in read_job_id(job_id):
            if len(parts) == 3:
                states |= {f"{parts[0]}_{i}": state for i in range(int(parts[1]), int(parts[2]) + 1)}
            else:
                states["_".join(parts)] = state
    return states


def sacct_states(job_ids: Collection[str], cluster_args: Sequence[str] = ()) -> dict[str, str]:
    """The accounting states of ``job_ids`` (array tasks included), one sacct call per 500 jobs."""
    parents = sorted({job_id.split("_")[0] for job_id in job_ids})
    states: dict[str, str] = {}
    for start in range(0, len(parents), _CHUNK):
        ids = ",".join(parents[start : start + _CHUNK])
        states |= parse_states(run_query(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ids, *cluster_args]))
    return states


def squeue_states(cluster_args: Sequence[str] = ()) -> dict[str, str]:
    """The states of this user's jobs that slurmctld still holds (pending, running, recently ended)."""
    return parse_states(run_query(["squeue", "--me", "-h", "-r", "-t", "all", "-o", "%i|%T", *cluster_args]))


def query_states(job_ids: Collection[str], cluster_args: Sequence[str] = ()) -> tuple[dict[str, str], str | None]:
    """The states of ``job_ids`` that sacct, or else squeue, knows, and what failed (None: nothing)."""
    states: dict[str, str] = {}
    problems = []
    try:
        states = sacct_states(job_ids, cluster_args)
    except StatusError as error:
        problems.append(str(error))
    missing = set(job_ids) - set(states)
    if missing:
        try:
            states |= {job_id: state for job_id, state in squeue_states(cluster_args).items() if job_id in missing}
        except StatusError as error:
            problems.append(str(error))
    return {job_id: states[job_id] for job_id in job_ids if job_id in states}, "; ".join(problems) or None


@dataclass(frozen=True)
class Verdict:
    """How a job ended: ``COMPLETED``, a failed SLURM state (``TIMEOUT``, ``OUT_OF_MEMORY``, ...) or ``UNKNOWN``."""

    state: str
    detail: str = ""

    @property
    def success(self) -> bool:
        return self.state == "COMPLETED"

    def describe(self) -> str:
        """``"TIMEOUT: it reached its time limit; <detail>"``."""
        meaning = MEANINGS.get(self.state, f"SLURM state {self.state}")
        return f"{self.state}: " + "; ".join(filter(None, [meaning, self.detail]))


def command_failure(error: str) -> str:
    """What submitit recorded about a failed command, shortened: ``"its command exited with code 1"``."""
    found = re.search(r"exited with code (-?\d+)", error)
    if found is None:
        lines = [line for line in error.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no error recorded"
    code = int(found.group(1))
    if code > 128:
        return f"its command was killed by signal {code - 128}"
    return f"its command exited with code {code}"


@dataclass
class Watch:
    """What is known about one submitted job, polled until :meth:`verdict` says how it ended.

    ``status_timeout``: seconds after which a job that neither its result file nor sacct / squeue accounts for
    counts as failed (state ``UNKNOWN``) instead of running forever. ``max_requeues``: how often submitit
    requeues a job at its time limit, for the TIMEOUT message.
    """

    status_timeout: float
    max_requeues: int
    unknown_since: float | None = field(default=None, init=False)
    ending_since: float | None = field(default=None, init=False)

    def verdict(self, result: tuple[str, Any] | None, state: str | None, now: float) -> Verdict | None:
        """How the job ended, or None while it is not over (or not known to be).

        ``result``: submitit's ``(outcome, value)`` once the command has finished (``"success"`` or ``"error"``
        with the traceback); ``state``: its SLURM state (None: neither sacct nor squeue knows it); ``now``:
        the time (seconds, monotonic).
        """
        if result is not None and result[0] == "success":
            return Verdict("COMPLETED")
        if result is None and state is None:
            return self._unknown(now)
        self.unknown_since = None
        if result is not None:
            return self._failed_command(str(result[1]), state, now)
        if state == "COMPLETED":
            return Verdict("COMPLETED")
        if state == "PREEMPTED" and not self._settled(now):
            return None  # may be requeued yet
        if state in TERMINAL_STATES:
            return Verdict(state, "the job ended before its command finished")
        return None

    def _unknown(self, now: float) -> Verdict | None:
        if self.unknown_since is None:
            self.unknown_since = now
        if now - self.unknown_since <= self.status_timeout:
            return None
        return Verdict("UNKNOWN", f"neither sacct nor squeue has known it for {now - self.unknown_since:.0f} s")

    def _failed_command(self, error: str, state: str | None, now: float) -> Verdict | None:
        if TIMED_OUT_TOO_MANY_TIMES in error:
            return Verdict(
                "TIMEOUT",
                f"stopped at the checkpoint signal before its time limit after {self.max_requeues} requeues at "
                f"the limit (--submitit-max-requeues={self.max_requeues})",
            )
        if state in TERMINAL_STATES - {"COMPLETED", "FAILED"}:
            return Verdict(state, command_failure(error))
        if state in TERMINAL_STATES or self._settled(now):
            return Verdict("FAILED", command_failure(error))
        return None  # the command failed; wait for SLURM's final state (OUT_OF_MEMORY, ...)

    def _settled(self, now: float) -> bool:
        """Whether SETTLE_SECONDS have passed since this was first asked."""
        if self.ending_since is None:
            self.ending_since = now
        return now - self.ending_since > SETTLE_SECONDS


@dataclass
class PollInterval:
    """Seconds until the next poll: ``minimum`` after a change, then growing by ``factor`` up to ``maximum``."""

    minimum: float
    maximum: float
    factor: float = 1.5
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.maximum = max(self.minimum, self.maximum)
        self.current = self.minimum

    def reset(self) -> float:
        """Back to ``minimum`` (new jobs, or a job ended)."""
        self.current = self.minimum
        return self.current

    def grow(self) -> float:
        """The next, longer interval (nothing changed)."""
        self.current = min(self.maximum, self.current * self.factor)
        return self.current
