"""The submitit executor's submission batches and log cleanup (no cluster needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snakemake_executor_plugin_submitit import array_batches, remove_leftovers


@dataclass
class FakeJob:
    """What array_batches reads of a Snakemake job."""

    name: str
    jobid: int
    group: bool = False

    def is_group(self) -> bool:
        return self.group


def test_jobs_of_one_rule_with_the_same_options_go_together_up_to_the_array_size():
    small, big = {"time": 5}, {"time": 60}
    ready = [(FakeJob("a", i), small) for i in range(5)] + [(FakeJob("a", 5), big), (FakeJob("b", 6), small)]
    ready += [(FakeJob("g", 7, group=True), small), (FakeJob("g", 8, group=True), small)]
    batches = array_batches(ready, size=2)
    assert [[job.jobid for job, _ in batch] for batch in batches] == [[0, 1], [2, 3], [4], [5], [6], [7], [8]]
    assert len(array_batches(ready, size=1)) == len(ready)  # arrays off


def test_leftovers_of_deleted_job_folders_go_and_failed_jobs_stay(tmp_path: Path):
    failed = tmp_path / "fail" / "12"
    failed.mkdir(parents=True)
    (failed / "12_submission.sh").write_text("#!/bin/bash\n")
    (tmp_path / "fail" / ".submission_file_1.sh").symlink_to(failed / "12_submission.sh")
    (tmp_path / "greet").mkdir()
    (tmp_path / "greet" / ".submission_file_2.sh").symlink_to(tmp_path / "greet" / "13" / "13_submission.sh")
    remove_leftovers(tmp_path)
    assert not (tmp_path / "greet").exists()
    assert (tmp_path / "fail" / ".submission_file_1.sh").is_symlink() and (failed / "12_submission.sh").is_file()
    remove_leftovers(tmp_path / "missing")  # no folder yet: nothing to do
