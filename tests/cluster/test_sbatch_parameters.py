"""How the submitit executor maps rule resources to sbatch options and names its jobs (no cluster needed)."""

from __future__ import annotations

import re

import pytest
from snakemake_interface_common.exceptions import WorkflowError
from submitit.slurm.slurm import _make_sbatch_string

from snakemake_executor_plugin_submitit.sbatch import (
    MANAGED_OPTIONS,
    describe_limits,
    job_cluster,
    job_comment,
    job_cpus,
    job_name,
    parse_slurm_extra,
    resource_warnings,
    sbatch_parameters,
)


def sbatch_lines(resources: dict, threads: int = 1, signal_seconds: int = 90) -> set[str]:
    """The ``#SBATCH`` lines submitit writes for these resources."""
    params = sbatch_parameters(resources, threads, signal_seconds=signal_seconds)
    script = _make_sbatch_string("cmd", "/tmp/x/%j", job_name="name", **params)
    return {line for line in script.splitlines() if line.startswith("#SBATCH")}


def test_resources_become_sbatch_directives():
    lines = sbatch_lines(
        {
            "runtime": 90,
            "mem_mb": 2000,
            "gpu": 2,
            "gpu_model": "a100",
            "slurm_partition": "gpu",
            "slurm_account": "lab",
            "qos": "high",
            "constraint": "fast",
            "reservation": "course",
            "clusters": "c2",
            "gres": "tmp:10G",
            "slurm_extra": "--exclusive --nice=5 --begin 'now+1hour'",
        },
        threads=4,
    )
    expected = {
        "#SBATCH --time=90",
        "#SBATCH --mem=2000M",
        "#SBATCH --gpus=a100:2",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=fast",
        "#SBATCH --reservation=course",
        "#SBATCH --clusters=c2",
        "#SBATCH --gres=tmp:10G",
        "#SBATCH --exclusive",
        "#SBATCH --nice=5",
        "#SBATCH --begin=now+1hour",
        "#SBATCH --requeue",
        "#SBATCH --signal=USR2@90",
        "#SBATCH --job-name=name",
    }
    assert expected <= lines


def test_memory_per_cpu_wins_over_total_memory():
    lines = sbatch_lines({"runtime": 10, "mem_mb": 4000, "mem_mb_per_cpu": 500}, threads=2)
    assert "#SBATCH --mem-per-cpu=500M" in lines
    assert not any(line.startswith("#SBATCH --mem=") for line in lines)


def test_cpus_follow_threads_unless_set_per_task_or_per_gpu():
    assert job_cpus(sbatch_parameters({"runtime": 10}, 3)) == 3
    assert job_cpus(sbatch_parameters({"runtime": 10, "cpus_per_task": 8}, 3)) == 8
    per_gpu = sbatch_parameters({"runtime": 10, "gpu": 2, "cpus_per_gpu": 4}, 3)
    assert job_cpus(per_gpu) == 8 and "cpus_per_task" not in per_gpu
    assert "#SBATCH --cpus-per-gpu=4" in sbatch_lines({"runtime": 10, "gpu": 2, "cpus_per_gpu": 4}, 3)
    # cpus_per_gpu only applies to GPU jobs (as in the official plugin)
    assert job_cpus(sbatch_parameters({"runtime": 10, "cpus_per_gpu": 4}, 3)) == 3


def test_a_gpu_model_alone_asks_for_one_gpu():
    assert "#SBATCH --gpus=h100:1" in sbatch_lines({"runtime": 10, "gpu_model": "h100"})
    with pytest.raises(WorkflowError, match="gpu_model"):
        sbatch_parameters({"runtime": 10, "gpu_model": "'a100'"}, 1)


def test_empty_or_missing_resources_are_left_to_the_cluster():
    lines = sbatch_lines({"runtime": 10, "gpu": 0, "slurm_partition": "", "slurm_account": "", "qos": ""})
    assert not any(word in line for line in lines for word in ("gpus", "partition", "account", "qos", "--mem"))


def test_a_runtime_is_required():
    with pytest.raises(WorkflowError, match="no runtime"):
        sbatch_parameters({"mem_mb": 1000}, 1)


@pytest.mark.parametrize("runtime", [1, "1"])
def test_a_runtime_within_the_signal_lead_time_is_refused(runtime):
    with pytest.raises(WorkflowError, match="does not exceed the checkpoint signal's lead time"):
        sbatch_parameters({"runtime": runtime}, 1, signal_seconds=90)
    assert sbatch_parameters({"runtime": 2}, 1, signal_seconds=90)["time"] == 2
    assert sbatch_parameters({"runtime": 1}, 1, signal_seconds=10)["signal_delay_s"] == 10


def test_slurm_extra_takes_long_options_only():
    assert parse_slurm_extra("--nice 10 --exclusive") == {"nice": "10", "exclusive": True}
    with pytest.raises(WorkflowError, match="-q"):
        parse_slurm_extra("-q high")


@pytest.mark.parametrize("option", ["--job-name=mine", "--output x.log", "--qos=high", "--time=10", "--mem=1G"])
def test_slurm_extra_cannot_override_the_executors_options(option):
    name = option[2:].split("=")[0].split()[0]
    with pytest.raises(WorkflowError, match=re.escape(f"--{name} is not allowed here: {MANAGED_OPTIONS[name]}")):
        sbatch_parameters({"runtime": 10, "slurm_extra": f"--exclusive {option}"}, 1)


def test_resources_this_executor_ignores_are_named():
    warnings = resource_warnings({"slurm_partition": "a", "slurm_qos": "x", "tasks": 4, "nodes": 1, "mpi": False})
    assert set(warnings) == {"slurm_qos", "tasks"}
    assert "unknown SLURM resource slurm_qos" in warnings["slurm_qos"]


def test_job_names_and_comments_carry_the_wildcards():
    one = [{"zoo": "cnn", "method": "rebasin"}]
    assert job_name("canonicalize", one) == "canonicalize-cnn-rebasin"
    assert job_comment("canonicalize", one) == "rule=canonicalize zoo=cnn method=rebasin"
    assert (job_name("tables", []), job_comment("tables", [])) == ("tables", "rule=tables")


def test_an_arrays_name_keeps_the_shared_wildcards_and_its_comment_lists_each_job():
    shards = [{"zoo": "mlp", "shard": str(i)} for i in range(3)]
    assert job_name("zoo_shard", shards) == "zoo_shard-mlp-*"
    assert (
        job_comment("zoo_shard", shards) == "rule=zoo_shard [0] zoo=mlp shard=0 [1] zoo=mlp shard=1 [2] zoo=mlp shard=2"
    )


def test_names_and_comments_stay_short_and_plain():
    long = [{"path": "a/b c;" * 100}]
    assert len(job_name("r", long)) <= 64 and " " not in job_name("r", long) and "/" not in job_name("r", long)
    comment = job_comment("r", [{"i": str(i)} for i in range(500)])
    assert len(comment) <= 1000 and comment.endswith(" ...")
    assert ";" not in job_comment("r", long)


def test_limits_are_described_for_messages():
    params = sbatch_parameters({"runtime": 60, "mem_mb": 2000, "gpu": 1}, 2)
    assert describe_limits(params) == "runtime 60 min, memory 2000 MB, 2 CPUs, GPUs 1"
    per_cpu = sbatch_parameters({"runtime": 5, "mem_mb_per_cpu": 100}, 1)
    assert describe_limits(per_cpu) == "runtime 5 min, memory 100 MB per CPU, 1 CPU"
    assert "the cluster's default" in describe_limits(sbatch_parameters({"runtime": 5}, 1))


def test_the_cluster_a_job_goes_to():
    assert job_cluster(sbatch_parameters({"runtime": 5}, 1)) is None
    assert job_cluster(sbatch_parameters({"runtime": 5, "slurm_cluster": "c3"}, 1)) == "c3"
