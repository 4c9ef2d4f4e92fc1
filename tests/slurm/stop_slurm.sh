#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_slurm.sh DIR started (munged is left running: it may be
# shared with other users of this machine).
set -uo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
for pidfile in "$1/slurmd.pid" "$1/slurmctld.pid"; do
  [[ -f "$pidfile" ]] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null
done
exit 0
