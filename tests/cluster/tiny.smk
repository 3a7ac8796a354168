# Tiny rules for tests/cluster/test_slurm.py (run with --snakefile and targets). Each rule declares its own
# threads and resources (the slurm profile holds only site settings), in the official SLURM plugin's names.
import os


rule greet:
    """Records its wildcard and the thread variables it runs with."""
    output:
        "greetings/{who}.txt",
    threads: 1
    resources:
        runtime=5,
        mem_mb=100,
    run:
        threads = [os.environ.get(name, "unset") for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")]
        with open(output[0], "w") as f:
            print(wildcards.who, *threads, file=f)


rule gpu:
    """A GPU job."""
    output:
        "gpu.txt",
    threads: 1
    resources:
        runtime=5,
        mem_mb=120,
        gpu=1,
    shell:
        "touch {output}"


rule per_cpu:
    """Memory per CPU and a quality of service (the QOS is created by the test)."""
    output:
        "per_cpu.txt",
    threads: 1
    resources:
        runtime=5,
        mem_mb_per_cpu=150,
        qos="symzoo-test",
    shell:
        "touch {output}"


rule conflict:
    """slurm_extra that would override the executor's job name."""
    output:
        "conflict.txt",
    resources:
        runtime=5,
        slurm_extra="--job-name=mine",
    shell:
        "touch {output}"


rule overtime:
    """Runs past its one-minute time limit."""
    output:
        "overtime.txt",
    resources:
        runtime=1,
        mem_mb=100,
    shell:
        "sleep 600; touch {output}"


rule fail:
    """Fails on the cluster."""
    output:
        "never.txt",
    log:
        "logs/fail.log",
    resources:
        runtime=5,
        mem_mb=100,
    shell:
        "echo 'failing on purpose' > {log}; exit 1"


rule two_runs:
    """Waits (for a signal) on its first run; succeeds when run again (requeued)."""
    output:
        "second-run.txt",
    log:
        "logs/two_runs.log",
    resources:
        runtime=10,
        mem_mb=100,
    shell:
        "if [ -e first-run.txt ]; then echo 'second run' >> {log}; touch {output};"
        " else echo 'first run' > {log}; touch first-run.txt; sleep 600; fi"


rule sleep:
    """Runs until cancelled."""
    output:
        "slept.txt",
    resources:
        runtime=10,
        mem_mb=100,
    shell:
        "touch sleeping.txt; sleep 600; touch {output}"
