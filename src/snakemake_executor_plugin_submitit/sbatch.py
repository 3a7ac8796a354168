"""Rule resources as sbatch options (submitit ``SlurmExecutor`` parameters), and the names of SLURM jobs.

Pure functions, no SLURM needed: :func:`sbatch_parameters` maps one job's resources, :func:`job_name` and
:func:`job_comment` label a job (or an array of jobs) so that ``squeue`` / ``sacct`` tell them apart, and
:func:`resource_warnings` names resource keys that this executor ignores. Resource names follow the official
``snakemake-executor-plugin-slurm``, so a profile written for it works here too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

# sbatch long options the executor sets itself -> what to use instead of slurm_extra
MANAGED_OPTIONS: dict[str, str] = {
    "job-name": "set by the executor (rule and wildcards)",
    "comment": "set by the executor (rule and wildcards)",
    "output": "set by the executor (submitit logs)",
    "error": "set by the executor (submitit logs)",
    "open-mode": "set by the executor (submitit logs)",
    "array": "set by the executor (--submitit-no-arrays disables arrays)",
    "signal": "set by the executor (--submitit-signal-seconds)",
    "requeue": "set by the executor (jobs always requeue at their time limit)",
    "no-requeue": "set by the executor (jobs always requeue at their time limit)",
    "export": "set by the executor (the job needs the submitting environment)",
    "time": "use the runtime resource",
    "mem": "use the mem_mb resource",
    "mem-per-cpu": "use the mem_mb_per_cpu resource",
    "cpus-per-task": "use threads (or the cpus_per_task resource)",
    "cpus-per-gpu": "use the cpus_per_gpu resource",
    "gpus": "use the gpu (and gpu_model) resources",
    "gpus-per-node": "use the gpu resource",
    "gres": "use the gres resource",
    "partition": "use the slurm_partition resource",
    "account": "use the slurm_account resource",
    "qos": "use the qos resource",
    "constraint": "use the constraint resource",
    "reservation": "use the reservation resource",
    "clusters": "use the clusters resource",
}

# resource keys that select sbatch options here (besides threads, which Snakemake passes separately)
KNOWN_RESOURCES = {
    "runtime", "mem_mb", "mem_mb_per_cpu", "cpus_per_task", "cpus_per_gpu", "gpu", "gpu_model", "gres",
    "slurm_partition", "slurm_account", "qos", "constraint", "reservation", "clusters", "cluster",
    "slurm_cluster", "slurm_extra", "slurm_requeue",
}  # fmt: skip
# keys of the official plugin that make no sense for one single-node task (value that is harmless: 1)
UNSUPPORTED_RESOURCES = {"nodes", "tasks", "tasks_per_node", "tasks_per_gpu", "mpi"}

MAX_NAME_LENGTH = 64  # short enough to read in squeue / sacct
MAX_COMMENT_LENGTH = 1000  # slurmctld refuses comments over 1024 characters


def _text(resources: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` set to a non-empty value, as text (empty string or None: unset)."""
    for key in keys:
        value = resources.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def _count(resources: Mapping[str, Any], key: str) -> int:
    """A non-negative integer resource (unset or empty: 0)."""
    value = resources.get(key)
    if value in (None, ""):
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WorkflowError(f"resource {key}={value!r}: expected an integer") from None
    if number < 0:
        raise WorkflowError(f"resource {key}={value!r}: expected an integer >= 0")
    return number


def runtime_minutes(resources: Mapping[str, Any], signal_seconds: int) -> int:
    """The ``runtime`` resource (minutes), which must leave time before the checkpoint signal.

    SLURM sends the checkpoint signal ``signal_seconds`` before the time limit; a runtime that does not exceed
    that lead time would have the job signalled (checkpointed and requeued) as soon as it starts, again and
    again, and then fail. Such a runtime is refused, as is a missing one (submitit would default to 5 minutes).
    """
    minutes = _count(resources, "runtime")
    if minutes == 0:
        raise WorkflowError(
            "no runtime resource (minutes): declare one in the rule (resources: runtime=...) "
            "or as a default (--default-resources runtime=...)"
        )
    if minutes * 60 <= signal_seconds:
        raise WorkflowError(
            f"runtime={minutes} min does not exceed the checkpoint signal's lead time "
            f"(--submitit-signal-seconds={signal_seconds}): SLURM would signal the job to checkpoint and requeue "
            f"as soon as it starts. Declare a runtime over {signal_seconds // 60} min, or lower "
            "--submitit-signal-seconds"
        )
    return minutes


def parse_slurm_extra(extra: str) -> dict[str, str | bool]:
    """``"--nice=10 --exclusive --begin now+1hour"`` as submitit's ``additional_parameters``.

    Only long options are accepted (short ones are ambiguous to parse), and none that the executor sets
    itself (:data:`MANAGED_OPTIONS`): those would silently override the executor's choice (or be overridden).
    """
    params: dict[str, str | bool] = {}
    tokens = shlex.split(extra)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) == 2:
            raise WorkflowError(f"slurm_extra: expected long sbatch options (--name[=value]), got {token!r}")
        name, eq, value = token[2:].partition("=")
        if name in MANAGED_OPTIONS:
            raise WorkflowError(f"slurm_extra: --{name} is not allowed here: {MANAGED_OPTIONS[name]}")
        if eq:
            params[name] = value
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            params[name] = tokens[i + 1]
            i += 1
        else:
            params[name] = True
        i += 1
    return params


def _memory(resources: Mapping[str, Any]) -> dict[str, str]:
    """``--mem-per-cpu`` from ``mem_mb_per_cpu`` (which wins, as in the official plugin), else ``--mem``."""
    if per_cpu := _count(resources, "mem_mb_per_cpu"):
        return {"mem_per_cpu": f"{per_cpu}M"}
    if total := _count(resources, "mem_mb"):
        return {"mem": f"{total}M"}
    return {}


def _gpus(resources: Mapping[str, Any]) -> str | None:
    """The ``--gpus`` value: ``gpu`` GPUs (``gpu_model`` alone: one), of model ``gpu_model`` if set."""
    count = _count(resources, "gpu")
    model = _text(resources, "gpu_model")
    if model is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", model):
        raise WorkflowError(f"resource gpu_model={model!r}: expected a GPU type name such as a100")
    if model is not None:
        return f"{model}:{count or 1}"
    return str(count) if count else None


def _cpus(resources: Mapping[str, Any], threads: int, gpus: str | None) -> tuple[str, int]:
    """The CPU option (``cpus_per_task`` or ``cpus-per-gpu``) and its value.

    Default: one CPU per thread Snakemake gives the job. ``cpus_per_task`` overrides that; ``cpus_per_gpu`` is
    used for GPU jobs only (as in the official plugin).
    """
    if per_task := _count(resources, "cpus_per_task"):
        return "cpus_per_task", per_task
    if gpus is not None and (per_gpu := _count(resources, "cpus_per_gpu")):
        return "cpus-per-gpu", per_gpu
    return "cpus_per_task", max(1, int(threads))


def sbatch_parameters(resources: Mapping[str, Any], threads: int, signal_seconds: int = 90) -> dict[str, Any]:
    """submitit ``SlurmExecutor`` parameters for a job's resources (the job's name and comment aside).

    =====================  ===============================  ==============================================
    resource               sbatch                           note
    =====================  ===============================  ==============================================
    ``threads``            ``--cpus-per-task``              unless ``cpus_per_task`` / ``cpus_per_gpu``
    ``runtime``            ``--time`` (minutes)             required; must exceed the signal lead time
    ``mem_mb``             ``--mem=<mem_mb>M``
    ``mem_mb_per_cpu``     ``--mem-per-cpu=<n>M``           wins over ``mem_mb``
    ``gpu``, ``gpu_model`` ``--gpus=[<model>:]<gpu>``       0 or unset: no GPU
    ``cpus_per_gpu``       ``--cpus-per-gpu``               GPU jobs only
    ``gres``               ``--gres``
    ``slurm_partition``    ``--partition``                  empty: the cluster's default
    ``slurm_account``      ``--account``                    empty: the user's default
    ``qos``                ``--qos``
    ``constraint``         ``--constraint``
    ``reservation``        ``--reservation``
    ``clusters``           ``--clusters``                   also ``cluster``, ``slurm_cluster``
    ``slurm_extra``        other long options               not one of :data:`MANAGED_OPTIONS`
    =====================  ===============================  ==============================================
    """
    gpus = _gpus(resources)
    cpu_option, cpus = _cpus(resources, threads, gpus)
    additional: dict[str, Any] = {"requeue": True}
    if cpu_option != "cpus_per_task":
        additional[cpu_option] = cpus
    optional = {
        "gpus": gpus,
        "reservation": _text(resources, "reservation"),
        "clusters": _text(resources, "clusters", "cluster", "slurm_cluster"),
    }
    additional |= {key: value for key, value in optional.items() if value is not None}
    additional |= parse_slurm_extra(_text(resources, "slurm_extra") or "")
    params: dict[str, Any] = {
        "time": runtime_minutes(resources, signal_seconds),
        "signal_delay_s": signal_seconds,
        "partition": _text(resources, "slurm_partition"),
        "account": _text(resources, "slurm_account"),
        "qos": _text(resources, "qos"),
        "constraint": _text(resources, "constraint"),
        "gres": _text(resources, "gres"),
        **_memory(resources),
        "additional_parameters": additional,
    }
    if cpu_option == "cpus_per_task":
        params["cpus_per_task"] = cpus
    return {key: value for key, value in params.items() if value is not None}


def job_cpus(params: Mapping[str, Any]) -> int:
    """How many CPUs the job's parameters allocate (the job's thread count on the node)."""
    if "cpus_per_task" in params:
        return int(params["cpus_per_task"])
    extra = params.get("additional_parameters", {})
    gpus = int(str(extra.get("gpus", "1")).rpartition(":")[2])
    return int(extra.get("cpus-per-gpu", 1)) * gpus


def job_cluster(params: Mapping[str, Any]) -> str | None:
    """The ``--clusters`` a job goes to (None: the local cluster)."""
    return params.get("additional_parameters", {}).get("clusters")


def describe_limits(params: Mapping[str, Any]) -> str:
    """The limits a job ran under, for messages: ``"runtime 60 min, memory 2000 MB, 2 CPUs, GPUs 1"``."""
    parts = [f"runtime {params['time']} min"]
    if "mem_per_cpu" in params:
        parts.append(f"memory {params['mem_per_cpu'].removesuffix('M')} MB per CPU")
    elif "mem" in params:
        parts.append(f"memory {params['mem'].removesuffix('M')} MB")
    else:
        parts.append("memory: the cluster's default")
    cpus = job_cpus(params)
    parts.append(f"{cpus} CPU{'s' if cpus != 1 else ''}")
    if gpus := params.get("additional_parameters", {}).get("gpus"):
        parts.append(f"GPUs {gpus}")
    return ", ".join(parts)


def _clean(text: str, keep: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9]`` and ``keep`` replaced by ``_``."""
    return re.sub(rf"[^A-Za-z0-9{re.escape(keep)}]", "_", text)


def job_name(rule: str, wildcards: Sequence[Mapping[str, str]]) -> str:
    """A short SLURM job name: the rule, then the wildcard values (``*`` where an array's jobs differ).

    ``job_name("canonicalize", [{"zoo": "cnn", "method": "rebasin"}]) == "canonicalize-cnn-rebasin"``
    """
    keys = list(wildcards[0]) if wildcards else []
    values = []
    for key in keys:
        seen = {str(w.get(key, "")) for w in wildcards}
        values.append(seen.pop() if len(seen) == 1 else "*")
    return _clean("-".join([rule, *values]), "._+=*-")[:MAX_NAME_LENGTH]


def job_comment(rule: str, wildcards: Sequence[Mapping[str, str]]) -> str:
    """The SLURM job comment: the rule and each job's wildcards (an array's jobs by task index).

    ``"rule=canonicalize zoo=cnn method=rebasin"``; for an array ``"rule=zoo_shard [0] shard=0 [1] shard=1"``.
    """

    def pairs(w: Mapping[str, str]) -> str:
        return " ".join(f"{key}={value}" for key, value in w.items())

    if len(wildcards) <= 1:
        parts = [pairs(w) for w in wildcards]
    else:
        parts = [f"[{index}] {pairs(w)}" for index, w in enumerate(wildcards)]
    comment = _clean(" ".join([f"rule={rule}", *filter(None, parts)]), " ._+=*,:/[]-")
    if len(comment) > MAX_COMMENT_LENGTH:
        comment = comment[: MAX_COMMENT_LENGTH - 4] + " ..."
    return comment


def resource_warnings(resources: Mapping[str, Any]) -> dict[str, str]:
    """Resource keys this executor ignores -> why (unknown ``slurm_*`` keys, multi-task keys)."""
    warnings = {}
    for key, value in resources.items():
        if key.startswith("slurm_") and key not in KNOWN_RESOURCES:
            warnings[key] = f"unknown SLURM resource {key} is ignored (known: {', '.join(sorted(KNOWN_RESOURCES))})"
        elif key in UNSUPPORTED_RESOURCES and value not in (None, "", 0, 1):
            warnings[key] = f"resource {key}={value!r} is ignored: every job runs as one task on one node"
    return warnings
