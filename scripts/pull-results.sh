#!/usr/bin/env bash
# Fetch the versioned results of this commit and make Snakemake accept them as up to date.
#
#   scripts/pull-results.sh [DVC PULL OPTIONS]      e.g. scripts/pull-results.sh -r shared -j 8
#
# 1. `dvc pull` checks out every output in dvc.yaml (data, zoos, encoders, merge, report).
# 2. DVC keeps no file times and a fresh clone has no .snakemake/ records, so Snakemake would re-run jobs
#    whose inputs happen to be checked out after their outputs. `snakemake --touch --forceall` touches
#    every output in DAG order and records each job's params, code and inputs, so `snakemake -n all`
#    says "Nothing to be done" and a later config edit re-runs exactly the jobs it affects.
# The config is the one dvc.yaml names (`vars: - config: ...`), i.e. the one that built the results.
# Run from anywhere inside the repository, with the environment (dvc, snakemake) active.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

config=$(python3 - <<'EOF'
import sys

import yaml

with open("dvc.yaml") as f:
    dvc = yaml.safe_load(f)
for entry in dvc.get("vars") or []:
    if isinstance(entry, dict) and "config" in entry:
        print(entry["config"])
        break
else:
    sys.exit("dvc.yaml: no `vars: - config: FILE` entry naming the Snakemake config")
EOF
)

echo "pull-results: dvc pull $*" >&2
dvc pull "$@"

echo "pull-results: marking the pulled outputs up to date for Snakemake (config: $config)" >&2
snakemake all --cores 1 --touch --forceall --configfile "$config" --quiet

echo "pull-results: done; 'snakemake -n all --configfile $config' has nothing to do" >&2
