"""Job states, failure verdicts, poll intervals and the efficiency summary of the submitit executor (no cluster)."""

from __future__ import annotations

import subprocess

import pytest

from snakemake_executor_plugin_submitit import efficiency, status
from snakemake_executor_plugin_submitit.status import SETTLE_SECONDS, PollInterval, Verdict, Watch

TIMEOUT_ERROR = (
    "Traceback ...\nsubmitit.core.utils.UncompletedJobError: Job not requeued because: timed-out too many times."
)
COMMAND_ERROR = "Traceback ...\nRuntimeError: Snakemake job command exited with code 1: python -m snakemake ..."


def test_states_are_read_from_sacct_and_squeue_lines():
    output = "12|RUNNING\n12.batch|RUNNING\n13|CANCELLED by 0\n14_[2-4%256]|PENDING\n14_0|COMPLETED\nCLUSTER: c\n"
    assert status.parse_states(output) == {
        "12": "RUNNING",
        "13": "CANCELLED",
        "14_2": "PENDING",
        "14_3": "PENDING",
        "14_4": "PENDING",
        "14_0": "COMPLETED",
    }


class FakeSlurm:
    """Stands in for sacct / squeue: canned outputs, or failures."""

    def __init__(self, sacct: str | None, squeue: str | None) -> None:
        self.outputs = {"sacct": sacct, "squeue": squeue}
        self.calls: list[list[str]] = []

    def __call__(self, command, **kwargs) -> subprocess.CompletedProcess:
        self.calls.append(list(command))
        output = self.outputs[command[0]]
        if output is None:
            return subprocess.CompletedProcess(command, 1, "", f"{command[0]}: error: Unable to contact slurmdbd\n")
        return subprocess.CompletedProcess(command, 0, output, "")


def test_squeue_answers_for_jobs_sacct_does_not_know(monkeypatch):
    fake = FakeSlurm(sacct="5|COMPLETED\n", squeue="6|PENDING\n7|RUNNING\n")
    monkeypatch.setattr(status.subprocess, "run", fake)
    assert status.query_states(["5", "6"]) == ({"5": "COMPLETED", "6": "PENDING"}, None)
    assert [call[0] for call in fake.calls] == ["sacct", "squeue"]
    assert fake.calls[0][-2:] == ["-j", "5,6"]


def test_a_failing_sacct_falls_back_to_squeue_and_is_named(monkeypatch):
    monkeypatch.setattr(status.subprocess, "run", FakeSlurm(sacct=None, squeue="6_1|RUNNING\n"))
    states, problem = status.query_states(["6_1", "8"])
    assert states == {"6_1": "RUNNING"}
    assert problem == "`sacct -X ...` failed: sacct: error: Unable to contact slurmdbd"


def test_array_tasks_are_asked_for_by_their_array(monkeypatch):
    fake = FakeSlurm(sacct="9_0|COMPLETED\n9_1|RUNNING\n", squeue="")
    monkeypatch.setattr(status.subprocess, "run", fake)
    assert status.query_states(["9_0", "9_1"]) == ({"9_0": "COMPLETED", "9_1": "RUNNING"}, None)
    assert fake.calls[0][-1] == "9"


def watch() -> Watch:
    return Watch(status_timeout=600, max_requeues=3)


def test_a_successful_command_is_a_success_whatever_the_state():
    assert watch().verdict(("success", None), "RUNNING", 0.0) == Verdict("COMPLETED")
    assert watch().verdict(None, "COMPLETED", 0.0) == Verdict("COMPLETED")


def test_running_and_requeued_jobs_are_not_over():
    for state in ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "SUSPENDED"):
        assert watch().verdict(None, state, 0.0) is None


def test_submitits_time_limit_error_is_a_timeout():
    verdict = watch().verdict(("error", TIMEOUT_ERROR), "FAILED", 0.0)
    assert verdict.state == "TIMEOUT" and "--submitit-max-requeues=3" in verdict.detail
    assert verdict.describe().startswith("TIMEOUT: it reached its time limit; stopped at the checkpoint signal")


@pytest.mark.parametrize("state", ["TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "BOOT_FAIL"])
def test_slurms_failure_states_are_named(state):
    w = watch()
    w.verdict(None, state, 0.0)  # PREEMPTED: not yet final (see below)
    assert w.verdict(None, state, 10 * SETTLE_SECONDS).state == state
    verdict = watch().verdict(("error", COMMAND_ERROR), state, 0.0)
    assert verdict == Verdict(state, "its command exited with code 1")
    assert verdict.describe().startswith(f"{state}: {status.MEANINGS[state]}")


def test_a_failed_command_waits_briefly_for_slurms_final_state():
    w = watch()
    assert w.verdict(("error", COMMAND_ERROR), "RUNNING", 0.0) is None  # OUT_OF_MEMORY, say, may follow
    assert w.verdict(("error", COMMAND_ERROR), "OUT_OF_MEMORY", 5.0).state == "OUT_OF_MEMORY"
    w = watch()
    assert w.verdict(("error", COMMAND_ERROR), "RUNNING", 0.0) is None
    verdict = w.verdict(("error", COMMAND_ERROR), "RUNNING", SETTLE_SECONDS + 1)
    assert verdict.describe() == "FAILED: its command exited with code 1"


def test_a_command_killed_by_a_signal_says_so():
    assert status.command_failure("RuntimeError: ... exited with code 137: cmd") == "its command was killed by signal 9"
    assert status.command_failure("ValueError: odd\n") == "ValueError: odd"


def test_a_preempted_job_may_still_be_requeued():
    w = watch()
    assert w.verdict(None, "PREEMPTED", 0.0) is None
    assert w.verdict(None, "PENDING", 30.0) is None  # requeued
    assert w.verdict(None, "PREEMPTED", 31.0 + SETTLE_SECONDS).state == "PREEMPTED"


def test_a_job_whose_state_stays_unknown_fails_after_the_bound():
    w = watch()
    assert w.verdict(None, None, 100.0) is None
    assert w.verdict(None, None, 650.0) is None
    assert w.verdict(None, "RUNNING", 680.0) is None  # known again: the bound starts over
    assert w.verdict(None, None, 700.0) is None
    verdict = w.verdict(None, None, 1301.0)
    assert verdict.state == "UNKNOWN" and "for 601 s" in verdict.detail


def test_the_poll_interval_grows_while_nothing_changes_and_is_bounded():
    interval = PollInterval(minimum=10, maximum=60)
    assert [interval.grow() for _ in range(6)] == [15, 22.5, 33.75, 50.625, 60, 60]
    assert interval.reset() == 10
    assert PollInterval(minimum=10, maximum=5).grow() == 10


SACCT_USAGE = """\
21|8|1|00:07.816|1||billing=1,cpu=1,gres/gpu=1,mem=100M,node=1
21.batch|8||00:00.009|1|10532K|
21.0|8||00:07.806|1|62424K|
22_0|20|5|01:00|2||cpu=2,mem=1G,node=1
22_0.batch|20||01:00|2|2G|
23|4|5|00:00:00|1||cpu=1,mem=100M,node=1
"""


def test_usage_is_read_from_sacct_jobs_and_steps():
    usages = efficiency.parse_usage(SACCT_USAGE)
    assert set(usages) == {"21", "22_0", "23"}
    assert usages["21"].peak_mb == pytest.approx(62424 / 1024) and usages["21"].gpus == 1
    assert usages["22_0"].requested_mb == 1024 and usages["22_0"].cpu_s == 60 and usages["23"].peak_mb is None


def test_the_summary_has_one_line_per_rule():
    lines = efficiency.summary_lines(efficiency.parse_usage(SACCT_USAGE), {"21": "gpu", "22_0": "big", "23": "idle"})
    assert lines[0] == "SLURM efficiency (sacct), per rule:"
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["big"].split()[1] == "1" and "0:00:20 / 0:05:00 (7%)" in rows["big"] and "150%" in rows["big"]
    assert "2048 MB / 1024 MB (200%)" in rows["big"]
    assert "61 MB / 100 MB (61%)" in rows["gpu"] and "98%" in rows["gpu"]
    assert rows["idle"].split()[-3:] == ["n/a", "n/a", "0"]  # no CPU time, no peak memory recorded


@pytest.mark.parametrize(("text", "seconds"), [("00:07.816", 7.816), ("01:02:03", 3723), ("1-00:00:01", 86401)])
def test_cpu_times(text, seconds):
    assert efficiency.cpu_seconds(text) == pytest.approx(seconds)
