"""How the submitit executor maps rule resources to sbatch options (no cluster needed)."""

from __future__ import annotations

import pytest
from snakemake_interface_common.exceptions import WorkflowError
from submitit.slurm.slurm import _make_sbatch_string

from snakemake_executor_plugin_submitit import parse_slurm_extra, sbatch_parameters


def sbatch_lines(resources: dict, threads: int = 1) -> set[str]:
    params = sbatch_parameters(resources, threads, "smk-rule-1")
    return {line for line in _make_sbatch_string("cmd", "/tmp/x/%j", **params).splitlines() if line.startswith("#")}


def test_resources_become_sbatch_directives():
    lines = sbatch_lines(
        {
            "runtime": 90,
            "mem_mb": 2000,
            "gpu": 2,
            "slurm_partition": "gpu",
            "slurm_account": "lab",
            "constraint": "a100",
            "slurm_extra": "--qos=high --exclusive --comment 'two words'",
        },
        threads=4,
    )
    expected = {
        "#SBATCH --time=90",
        "#SBATCH --mem=2000M",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --constraint=a100",
        "#SBATCH --qos=high",
        "#SBATCH --exclusive",
        "#SBATCH --comment='two words'",
        "#SBATCH --requeue",
        "#SBATCH --signal=USR2@90",
        "#SBATCH --job-name=smk-rule-1",
    }
    assert expected <= lines


def test_empty_or_missing_resources_are_left_to_the_cluster():
    lines = sbatch_lines({"runtime": 10, "gpu": 0, "slurm_partition": "", "slurm_account": ""})
    assert not any(word in line for line in lines for word in ("gpus", "partition", "account", "--mem="))


def test_a_runtime_is_required():
    with pytest.raises(WorkflowError, match="runtime"):
        sbatch_parameters({"mem_mb": 1000}, 1, "smk-rule-1")


def test_slurm_extra_takes_long_options_only():
    assert parse_slurm_extra("--nice 10 --exclusive") == {"nice": "10", "exclusive": True}
    with pytest.raises(WorkflowError, match="-q"):
        parse_slurm_extra("-q high")
