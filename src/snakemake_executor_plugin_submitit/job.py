"""What runs on the node: :class:`JobCommand`, the picklable callable that submitit runs in each SLURM job.

Imports only the standard library and submitit, so that the job starts fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any

import submitit
from submitit.slurm.slurm import SlurmJobEnvironment

# Thread-count variables set to the job's CPUs, so that no library starts one thread per core of the node.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Marker in the error submitit records when a job has reached its time limit more than max_num_timeout times.
TIMED_OUT_TOO_MANY_TIMES = "timed-out too many times"

_PR_SET_CHILD_SUBREAPER = 36

# The job command running in this (job-side) process, for the checkpoint signal handler.
_running: subprocess.Popen | None = None


class JobCommand(submitit.helpers.Checkpointable):
    """A Snakemake job's command line, run by submitit on the node (picklable; checkpointable).

    The command runs in its own process group, so that it can be stopped as a whole (the shell, Snakemake
    and the rule's processes), with OMP_NUM_THREADS / MKL_NUM_THREADS set to the job's CPUs; its output goes to
    the submitit log files, and a non-zero exit fails the submitit job. When SLURM ends the job (SIGTERM:
    cancellation, or a requeue by SLURM), this process stops the command and leaves without a result, so that
    the rerun of a requeued job is never mistaken for the end of the interrupted one.
    """

    def __init__(self, command: str, cwd: str, threads: int = 1, term_grace_seconds: float = 60.0) -> None:
        self.command = command
        self.cwd = cwd
        self.threads = threads
        self.term_grace_seconds = term_grace_seconds

    def environment(self) -> dict[str, str]:
        """The command's environment: this process's, with the thread-count variables set to the job's CPUs."""
        return {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(self.threads))}

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
            _running = subprocess.Popen(
                ["/bin/sh", "-c", self.command], cwd=self.cwd, env=self.environment(), start_new_session=True
            )
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
