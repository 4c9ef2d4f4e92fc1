#!/usr/bin/env bash
# Train a baseline and its PSA twin into one experiment folder, test both, compare:
#   bash scripts/compare_train.sh BASELINE_CONFIG PSA_CONFIG GPUS [--seeds N|K1,K2,...] [train.py args]
# EXP_DIR (default work_dirs/compare_<PSA config name>). GPUS=1 trains without a launcher;
# GPUS>1 uses dist_train.sh / dist_test.sh. Results: $EXP_DIR/{baseline,psa}/metrics.json (and
# results.json, the predictions in COCO's results format), $EXP_DIR/compare.{md,csv,json,png}.
# --seeds N trains and tests each twin with randomness.seed = 0..N-1 (or the listed seeds) into
# $EXP_DIR/{baseline,psa}/seed-<k>/; a seed whose metrics.json and results.json exist is skipped
# and a seed killed during training resumes from its last checkpoint, so rerunning the same
# command continues a killed job. TEST_ARGS (word-split) go to test.py, COMPARE_ARGS to
# compare_ap.py (e.g. COMPARE_ARGS="--bootstrap 2000").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
USAGE="usage: $0 BASELINE_CONFIG PSA_CONFIG GPUS [--seeds N|K1,K2,...] [train.py args]"
[[ $# -ge 3 ]] || { echo "$USAGE" >&2; exit 2; }
BASE=$1; PSA=$2; GPUS=$3; shift 3
for c in "$BASE" "$PSA"; do [[ -f "$c" ]] || { echo "error: $c: no such config file" >&2; exit 2; }; done
# the names compare_ap.py pairs the runs by, checked before hours of training
"$PYTHON" -c 'import sys; from psa_pose.evaluation.compare import check_pair_main; sys.exit(check_pair_main(sys.argv[1:]))' "$BASE" "$PSA"
SEEDS=(); ARGS=()
while [[ $# -gt 0 ]]; do
  if [[ $1 == --seeds ]]; then
    spec=${2:-}
    if [[ $spec =~ ^[1-9][0-9]*$ ]]; then SEEDS=($(seq 0 $((spec - 1))))
    elif [[ $spec =~ ^[0-9]+(,[0-9]+)*$ ]]; then IFS=, read -ra SEEDS <<< "$spec"
    else echo "error: --seeds ${spec:-(missing)}: needs a count N (seeds 0..N-1) or a list like 0,1,2; $USAGE" >&2; exit 2
    fi
    shift 2
  else
    ARGS+=("$1"); shift
  fi
done
EXP_DIR=${EXP_DIR:-work_dirs/compare_$(basename "$PSA" .py)}

# train and test one twin into WORK; extra arguments go to train.py and, through SEED_OPT
# (the seed's --cfg-options), to test.py too, whose metrics.json records the seed
SEED_OPT=()
run_twin() {
  local role=$1 config=$2 work=$3; shift 3
  echo "[compare_train] $(date +%H:%M:%S) training $role: $config -> $work"
  if [[ "$GPUS" -gt 1 ]]; then
    bash "$ROOT/scripts/dist_train.sh" "$config" "$GPUS" --work-dir "$work" "$@" ${ARGS[@]+"${ARGS[@]}"}
  else
    "$PYTHON" "$ROOT/scripts/train.py" "$config" --work-dir "$work" "$@" ${ARGS[@]+"${ARGS[@]}"}
  fi
  local ckpt best
  ckpt=$(cat "$work/last_checkpoint")
  best=$(ls "$work"/best_*.pth 2>/dev/null | head -n 1 || true)
  [[ -n "$best" ]] && ckpt=$best
  echo "[compare_train] $(date +%H:%M:%S) testing $role: $ckpt"
  if [[ "$GPUS" -gt 1 ]]; then
    bash "$ROOT/scripts/dist_test.sh" "$config" "$ckpt" "$GPUS" --work-dir "$work/test" --out "$work/metrics.json" --coco-results "$work/results.json" ${SEED_OPT[@]+"${SEED_OPT[@]}"} ${TEST_ARGS:-}
  else
    "$PYTHON" "$ROOT/scripts/test.py" "$config" "$ckpt" --work-dir "$work/test" --out "$work/metrics.json" --coco-results "$work/results.json" ${SEED_OPT[@]+"${SEED_OPT[@]}"} ${TEST_ARGS:-}
  fi
}

if [[ ${#SEEDS[@]} -eq 0 ]]; then
  run_twin baseline "$BASE" "$EXP_DIR/baseline"
  run_twin psa "$PSA" "$EXP_DIR/psa"
else
  for k in "${SEEDS[@]}"; do
    for role in baseline psa; do
      if [[ $role == baseline ]]; then CONFIG=$BASE; else CONFIG=$PSA; fi
      WORK="$EXP_DIR/$role/seed-$k"
      if [[ -f "$WORK/metrics.json" && -f "$WORK/results.json" ]]; then
        echo "[compare_train] seed $k $role: finished before ($WORK/metrics.json), skipping"
        continue
      fi
      RESUME=()
      [[ -f "$WORK/last_checkpoint" ]] && { RESUME=(--resume); echo "[compare_train] seed $k $role: resuming its killed run"; }
      SEED_OPT=(--cfg-options "randomness.seed=$k")
      run_twin "$role" "$CONFIG" "$WORK" "${SEED_OPT[@]}" ${RESUME[@]+"${RESUME[@]}"}
    done
  done
fi
# NO_COMPARE=1: leave the comparison to the caller (quickstart.sh runs it as its own step)
[[ ${NO_COMPARE:-0} == 1 ]] || "$PYTHON" "$ROOT/scripts/compare_ap.py" "$EXP_DIR/baseline" "$EXP_DIR/psa" --out-dir "$EXP_DIR" ${COMPARE_ARGS:-}
