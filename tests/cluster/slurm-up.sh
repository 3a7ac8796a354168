#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine for tests/cluster (Debian 12, SLURM 22.05, run as root).
#
#   munged -> MariaDB (127.0.0.1 only) -> slurmdbd -> slurmctld -> slurmd, node "localhost" with 2 fake GPUs
#
# Installs Debian's slurmctld slurmd slurm-client munge slurmdbd mariadb-server when missing. No systemd needed:
# the daemons are started directly. Idempotent: exits at once when the cluster already answers, otherwise
# starts only the daemons that are not running. Every daemon it starts is recorded in $MARK, so that
# slurm-down.sh stops those and nothing else.
#
# Environment: SYMZOO_SLURM_GPUS (fake GPUs on the node, default 2).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

CLUSTER=symzoo
ACCOUNT=symzoo
NGPU=${SYMZOO_SLURM_GPUS:-2}
ETC=/etc/slurm
MARK=/run/symzoo-slurm
LOG=/var/log/slurm
PACKAGES=(slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client sbatch:slurm-client munged:munge
    slurmdbd:slurmdbd mariadbd:mariadb-server)

say() { echo "slurm-up: $*" >&2; }
die() {
    say "ERROR: $*"
    for f in "$LOG"/slurmctld.log "$LOG"/slurmd.log "$LOG"/slurmdbd.log; do
        [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it succeeds
wait_for() {
    local seconds=$1 what=$2
    shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "timed out after ${seconds}s waiting for $what"
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
started() { echo "$1" >>"$MARK/started"; }

node_ready() { sinfo -h -N -n localhost -o %T | grep -qE '^(idle|mixed|allocated|completing)'; }
ctld_up() { scontrol ping | grep -q 'is UP'; }
dbd_up() { sacctmgr -n -P list cluster format=cluster; }
cluster_up() {
    ctld_up 2>/dev/null && node_ready 2>/dev/null &&
        sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"
}

[[ $(id -u) == 0 ]] || die "must run as root"
if command -v scontrol >/dev/null && cluster_up; then
    say "cluster already up"
    exit 0
fi

# --- packages ---------------------------------------------------------------------------------------------
missing=()
for pair in "${PACKAGES[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$MARK" "$LOG" "$ETC" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd

# --- configuration ------------------------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
def_mem=$((mem_mb / cpus < 2048 ? mem_mb / cpus : 2048))

# fake GPUs: gres File= must be a character device; c 1 3 is /dev/null's
gres_files=()
for ((g = 0; g < NGPU; g++)); do
    dev=/dev/symzoo-fake-gpu$g
    [[ -c $dev ]] || mknod -m 666 "$dev" c 1 3
    gres_files+=("$dev")
done

cat >"$ETC/slurm.conf" <<EOF
# Written by tests/cluster/slurm-up.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it starts again (default 120)
AuthInfo=cred_expire=10
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# CPU time and memory use per job (sacct TotalCPU, MaxRSS), for the executor's efficiency summary
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=5
# schedule every few seconds (a requeued job becomes eligible without an event to trigger scheduling)
SchedulerParameters=sched_interval=5,bf_interval=5
DefMemPerCPU=$def_mem
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
# sacct shows job comments (the executor writes the rule and wildcards there)
AccountingStoreFlags=job_comment
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

{
    echo "# Written by tests/cluster/slurm-up.sh: fake GPUs (character devices)."
    for dev in "${gres_files[@]}"; do echo "NodeName=localhost Name=gpu File=$dev"; done
} >"$ETC/gres.conf"

cat >"$ETC/slurmdbd.conf" <<EOF
# Written by tests/cluster/slurm-up.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf"

# --- munge --------------------------------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
fi
if ! alive /run/munge/munged.pid; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    started munged
fi
wait_for 10 munge bash -c 'munge -n | unmunge'

# --- MariaDB (accounting database) ----------------------------------------------------------------------------
if ! mariadb-admin ping >/dev/null 2>&1; then
    install -d -o mysql -g mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    say "starting mariadbd"
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid \
        </dev/null >>"$LOG/mariadb.log" 2>&1 &
    started mariadbd
    wait_for 60 mariadb mariadb-admin ping
fi
mariadb <<'EOF'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF

# --- slurmdbd, then the cluster and account records (sacctmgr needs slurm.conf to name the slurmdbd) ----------
if ! alive /run/slurmdbd.pid; then
    say "starting slurmdbd"
    slurmdbd
    started slurmdbd
fi
wait_for 60 slurmdbd dbd_up
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
    sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=tests Organization=tests >/dev/null
sacctmgr -n -P list user format=user | grep -qx root ||
    sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null

# --- slurmctld, slurmd --------------------------------------------------------------------------------------
if ! alive /run/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld -i
    started slurmctld
fi
wait_for 30 slurmctld ctld_up
if ! alive /run/slurmd.pid; then
    say "starting slurmd"
    slurmd -N localhost
    started slurmd
fi
if ! timeout 20 bash -c "until sinfo -h -N -n localhost -o %T | grep -qE '^(idle|mixed|allocated)'; do sleep 0.5; done"; then
    # a node left down or drained by an earlier, unclean stop
    scontrol update NodeName=localhost State=RESUME || true
fi
wait_for 30 "node localhost" node_ready
say "cluster $CLUSTER up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G')"
