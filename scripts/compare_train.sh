#!/usr/bin/env bash
# Train a baseline and its PSA twin into one experiment folder, test both, compare:
#   bash scripts/compare_train.sh BASELINE_CONFIG PSA_CONFIG GPUS [train.py args]
# EXP_DIR (default work_dirs/compare_<PSA config name>). GPUS=1 trains without a launcher;
# GPUS>1 uses dist_train.sh / dist_test.sh. Results: $EXP_DIR/{baseline,psa}/metrics.json (and
# results.json, the predictions in COCO's results format), $EXP_DIR/compare.{md,csv,json,png}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 3 ]] || { echo "usage: $0 BASELINE_CONFIG PSA_CONFIG GPUS [train.py args]" >&2; exit 2; }
BASE=$1; PSA=$2; GPUS=$3; shift 3
for c in "$BASE" "$PSA"; do [[ -f "$c" ]] || { echo "error: $c: no such config file" >&2; exit 2; }; done
EXP_DIR=${EXP_DIR:-work_dirs/compare_$(basename "$PSA" .py)}
# TEST_ARGS (word-split) go to test.py, e.g. TEST_ARGS="--cfg-options k=v".
for role in baseline psa; do
  if [[ $role == baseline ]]; then CONFIG=$BASE; else CONFIG=$PSA; fi
  WORK="$EXP_DIR/$role"
  echo "[compare_train] $(date +%H:%M:%S) training $role: $CONFIG -> $WORK"
  if [[ "$GPUS" -gt 1 ]]; then
    bash "$ROOT/scripts/dist_train.sh" "$CONFIG" "$GPUS" --work-dir "$WORK" "$@"
  else
    "$PYTHON" "$ROOT/scripts/train.py" "$CONFIG" --work-dir "$WORK" "$@"
  fi
  CKPT=$(cat "$WORK/last_checkpoint")
  best=$(ls "$WORK"/best_*.pth 2>/dev/null | head -n 1 || true)
  [[ -n "$best" ]] && CKPT=$best
  echo "[compare_train] $(date +%H:%M:%S) testing $role: $CKPT"
  if [[ "$GPUS" -gt 1 ]]; then
    bash "$ROOT/scripts/dist_test.sh" "$CONFIG" "$CKPT" "$GPUS" --work-dir "$WORK/test" --out "$WORK/metrics.json" --coco-results "$WORK/results.json" ${TEST_ARGS:-}
  else
    "$PYTHON" "$ROOT/scripts/test.py" "$CONFIG" "$CKPT" --work-dir "$WORK/test" --out "$WORK/metrics.json" --coco-results "$WORK/results.json" ${TEST_ARGS:-}
  fi
done
"$PYTHON" "$ROOT/scripts/compare_ap.py" "$EXP_DIR/baseline" "$EXP_DIR/psa" --out-dir "$EXP_DIR"
