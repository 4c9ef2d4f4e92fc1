#!/usr/bin/env bash
# Distributed testing with torchrun: bash scripts/dist_test.sh CONFIG CKPT GPUS [test.py args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 3 ]] || { echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args]" >&2; exit 2; }
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
# once, before the workers: a busy port (on the master node) and a mistake in the config or
# the data are one line here, not one per rank and torchrun's traceback
if [[ "${NODE_RANK:-0}" == 0 ]]; then
  "$PYTHON" -m psa_pose.engine.launch_check port "${PORT:-29500}" "scripts/dist_test.sh"
fi
"$PYTHON" "$ROOT/scripts/test.py" "$CONFIG" "$CHECKPOINT" "$@" --check > /dev/null
exec "$PYTHON" -m psa_pose.engine.torchrun \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$ROOT/scripts/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
