#!/usr/bin/env bash
# Stop the daemons that tests/cluster/slurm-up.sh started (and only those), newest first.
# Configuration, the accounting database and SLURM's state stay, so slurm-up.sh brings the cluster back fast.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

MARK=/run/symzoo-slurm
declare -A PIDFILE=(
    [slurmd]=/run/slurmd.pid
    [slurmctld]=/run/slurmctld.pid
    [slurmdbd]=/run/slurmdbd.pid
    [mariadbd]=/run/mysqld/mysqld.pid
    [munged]=/run/munge/munged.pid
)

[[ -s $MARK/started ]] || {
    echo "slurm-down: nothing started by slurm-up.sh" >&2
    exit 0
}
for name in $(tac "$MARK/started"); do
    pidfile=${PIDFILE[$name]:-}
    [[ -n $pidfile && -s $pidfile ]] || continue
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || continue
    echo "slurm-down: stopping $name ($pid)" >&2
    kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
done
rm -f "$MARK/started"
