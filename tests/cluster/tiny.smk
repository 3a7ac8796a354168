# Tiny one-rule jobs for tests/cluster/test_slurm.py (run with --snakefile and a target).


rule fail:
    """Fails on the cluster."""
    output:
        "never.txt",
    log:
        "logs/fail.log",
    shell:
        "echo 'failing on purpose' > {log}; exit 1"


rule two_runs:
    """Waits (for a signal) on its first run; succeeds when run again (requeued)."""
    output:
        "second-run.txt",
    log:
        "logs/two_runs.log",
    shell:
        "if [ -e first-run.txt ]; then echo 'second run' >> {log}; touch {output};"
        " else echo 'first run' > {log}; touch first-run.txt; sleep 600; fi"


rule sleep:
    """Runs until cancelled."""
    output:
        "slept.txt",
    shell:
        "touch sleeping.txt; sleep 600; touch {output}"
