#!/usr/bin/env bash
# Slurm: bash scripts/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS from the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 4 ]] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]" >&2; exit 2; }
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; WORK_DIR=$4; shift 4
GPUS=${GPUS:-8}; GPUS_PER_NODE=${GPUS_PER_NODE:-8}; CPUS_PER_TASK=${CPUS_PER_TASK:-5}
# shellcheck disable=SC2086
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
  --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
  --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  "$PYTHON" -u "$ROOT/scripts/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@"
