#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the tests and CI (tests/slurm/):
#   bash tests/slurm/start_slurm.sh DIR      # prints `export SLURM_CONF=DIR/slurm.conf`
#   bash tests/slurm/stop_slurm.sh DIR
# Installs Debian's slurm-wlm and munge with apt-get when srun is missing (needs root), starts
# munged (if none runs), slurmctld and slurmd on localhost with a minimal slurm.conf in DIR
# (partition `cpu`, every core of this machine, no cgroups, no accounting), and waits until
# the node is idle. Every file it writes is under DIR, except munge's default socket.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
if ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$DIR/apt.log" 2>&1
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >>"$DIR/apt.log" 2>&1 \
    || { echo "error: apt-get install slurm-wlm munge failed; see $DIR/apt.log" >&2; exit 1; }
fi
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
# free ports for the two daemons
read -r CTLD_PORT SLURMD_PORT < <(python3 - <<'PY'
import socket
s1, s2 = socket.socket(), socket.socket()
s1.bind(('127.0.0.1', 0)); s2.bind(('127.0.0.1', 0))
print(s1.getsockname()[1], s2.getsockname()[1])
PY
)
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
cat >"$DIR/slurm.conf" <<CONF
ClusterName=psa-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$DIR/slurm.conf
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  munged --force
fi
slurmctld
slurmd
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null || true)
  [[ "$state" == idle* ]] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 1
done
echo "error: the slurm node did not become idle in 60 s (state: ${state:-none}); logs:" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
exit 1
