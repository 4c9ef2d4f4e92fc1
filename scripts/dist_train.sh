#!/usr/bin/env bash
# Distributed training with torchrun: bash scripts/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT from the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 2 ]] || { echo "usage: $0 CONFIG GPUS [train.py args]" >&2; exit 2; }
CONFIG=$1; GPUS=$2; shift 2
# once, before the workers: a busy port (on the master node) and a mistake in the config or
# the data are one line here, not one per rank and torchrun's traceback
if [[ "${NODE_RANK:-0}" == 0 ]]; then
  "$PYTHON" -m psa_pose.engine.launch_check port "${PORT:-29500}" "scripts/dist_train.sh"
fi
"$PYTHON" "$ROOT/scripts/train.py" "$CONFIG" "$@" --check > /dev/null
# what a preempted run prints to resume (psa_pose/engine/preemption.py)
PSA_POSE_COMMAND=$(printf '%s\n' bash "$0" "$CONFIG" "$GPUS" "$@"); export PSA_POSE_COMMAND
# torchrun, ending in one line (psa_pose/engine/torchrun.py)
exec "$PYTHON" -m psa_pose.engine.torchrun \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$ROOT/scripts/train.py" "$CONFIG" --launcher pytorch "$@"
