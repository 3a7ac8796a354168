"""The end-of-run efficiency summary, per rule, from ``sacct``: like ``seff``, or the official plugin's report.

For each rule: how many jobs, the longest elapsed time against the time limit, CPU efficiency (CPU time over
elapsed time x CPUs, all jobs together), peak memory against the memory requested, and GPUs requested per job.
CPU time and memory need SLURM's job accounting (``JobAcctGatherType``); without it they read ``n/a``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .status import run_query

FIELDS = "JobID,ElapsedRaw,TimelimitRaw,TotalCPU,NCPUS,MaxRSS,ReqTRES"
_UNITS_MB = {"": 1 / 1024**2, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}  # no unit: bytes


@dataclass
class Usage:
    """One job's accounting record (its steps' peak memory folded in)."""

    elapsed_s: int
    limit_min: int | None
    cpu_s: float
    cpus: int
    requested_mb: float | None
    gpus: int
    peak_mb: float | None = None


def cpu_seconds(text: str) -> float:
    """sacct's TotalCPU (``[D-][HH:]MM:SS[.sss]``) in seconds."""
    days, _, clock = text.strip().rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part or 0)
    return seconds + int(days or 0) * 86400


def megabytes(text: str) -> float | None:
    """``"62424K"``, ``"100M"``, ``"1.5G"`` (no unit: bytes) in MB (None: empty or unreadable)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if found is None:
        return None
    return float(found.group(1)) * _UNITS_MB[found.group(2)]


def tres(text: str) -> dict[str, str]:
    """``"cpu=1,mem=100M,gres/gpu=1"`` as a dict."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def parse_usage(output: str) -> dict[str, Usage]:
    """``sacct -P -n -o FIELDS`` output (jobs and steps) as job id -> :class:`Usage`."""
    usages: dict[str, Usage] = {}
    for line in output.splitlines():
        values = line.split("|")
        if len(values) != len(FIELDS.split(",")):
            continue
        job_id, elapsed, limit, cpu, cpus, rss, requested = values
        job, _, step = job_id.partition(".")
        if not step:
            trackable = tres(requested)
            usages[job] = Usage(
                elapsed_s=int(elapsed or 0),
                limit_min=int(limit) if limit.isdigit() else None,
                cpu_s=cpu_seconds(cpu) if cpu else 0.0,
                cpus=int(cpus or 1),
                requested_mb=megabytes(trackable.get("mem", "")),
                gpus=int(trackable.get("gres/gpu", 0)),
            )
        elif job in usages and (peak := megabytes(rss)) is not None:
            usages[job].peak_mb = max(usages[job].peak_mb or 0.0, peak)
    return usages


def query_usage(job_ids: Sequence[str], cluster_args: Sequence[str] = ()) -> dict[str, Usage]:
    """The accounting records of ``job_ids`` (array tasks included)."""
    parents = sorted({job_id.split("_")[0] for job_id in job_ids})
    output = run_query(["sacct", "-n", "-P", "-o", FIELDS, "-j", ",".join(parents), *cluster_args])
    return {job_id: usage for job_id, usage in parse_usage(output).items() if job_id in set(job_ids)}


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _percent(part: float, whole: float | None) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def rule_summary(usages: Sequence[Usage]) -> tuple[str, str, str, str]:
    """Elapsed / limit, CPU efficiency, peak / requested memory, GPUs per job: one rule's jobs together."""
    longest = max(usages, key=lambda u: u.elapsed_s)
    limit = longest.limit_min * 60 if longest.limit_min else None
    elapsed = (
        f"{_clock(longest.elapsed_s)} / {_clock(limit) if limit else 'n/a'} ({_percent(longest.elapsed_s, limit)})"
    )
    cpu_time = sum(u.cpu_s for u in usages)
    cpu = _percent(cpu_time, sum(u.elapsed_s * u.cpus for u in usages)) if cpu_time else "n/a"
    peaks = [u for u in usages if u.peak_mb is not None]
    if peaks:
        top = max(peaks, key=lambda u: u.peak_mb or 0.0)
        requested = f"{top.requested_mb:.0f} MB" if top.requested_mb else "n/a"
        memory = f"{top.peak_mb:.0f} MB / {requested} ({_percent(top.peak_mb or 0.0, top.requested_mb)})"
    else:
        memory = "n/a"
    gpus = ",".join(sorted({str(u.gpus) for u in usages}))
    return elapsed, cpu, memory, gpus


def summary_lines(usages: Mapping[str, Usage], rules: Mapping[str, str]) -> list[str]:
    """The summary table: one line per rule (``rules``: job id -> rule), for the jobs sacct knows."""
    by_rule: dict[str, list[Usage]] = {}
    for job_id, usage in usages.items():
        by_rule.setdefault(rules.get(job_id, "?"), []).append(usage)
    header = ("rule", "jobs", "elapsed max / limit", "CPU efficiency", "memory peak / requested", "GPUs/job")
    rows = [header] + [(rule, str(len(us)), *rule_summary(us)) for rule, us in sorted(by_rule.items())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "SLURM efficiency (sacct), per rule:",
        *("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows),
    ]
