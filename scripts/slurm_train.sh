#!/usr/bin/env bash
# Slurm: bash scripts/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# From the environment: GPUS (8: processes in all, one per GPU), GPUS_PER_NODE (8: processes
# per node), CPUS_PER_TASK (5), GRES (gpu:GPUS_PER_NODE; empty on a CPU-only partition, whose
# processes then use gloo), MASTER_PORT (29500), SRUN_ARGS (more srun options).
# --requeue (first of the train.py args): for jobs that Slurm requeues (sbatch --requeue, or a
# partition with PreemptMode=REQUEUE): the job resumes by itself from WORK_DIR's last checkpoint
# when it has one. Slurm's SIGTERM before preemption (and SIGUSR1 from sbatch
# --signal=USR1@SECONDS) makes train.py save the current iteration first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 4 ]] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]" >&2; exit 2; }
# what a preempted run prints to resume (psa_pose/engine/preemption.py); srun passes it on
PSA_POSE_COMMAND=$(printf '%s\n' bash "$0" "$@"); export PSA_POSE_COMMAND
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; WORK_DIR=$4; shift 4
RESUME=()
if [[ ${1:-} == --requeue ]]; then
  shift
  if [[ -f "$WORK_DIR/last_checkpoint" ]]; then
    RESUME=(--resume); echo "[slurm_train] resuming from $(cat "$WORK_DIR/last_checkpoint")"
  fi
fi
GPUS=${GPUS:-8}; GPUS_PER_NODE=${GPUS_PER_NODE:-8}; CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
# the config and the data checked once, before srun starts the workers (one line, not one per
# rank)
"$PYTHON" "$ROOT/scripts/train.py" "$CONFIG" --work-dir="$WORK_DIR" "$@" ${RESUME[@]+"${RESUME[@]}"} --check > /dev/null
# shellcheck disable=SC2086
exec srun -p "$PARTITION" --job-name="$JOB_NAME" ${GRES:+--gres="$GRES"} \
  --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
  --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  "$PYTHON" -u "$ROOT/scripts/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@" \
  ${RESUME[@]+"${RESUME[@]}"}
