#!/usr/bin/env bash
# The whole job on a CPU, with data the project generates (no COCO, no GPU, no downloads):
#   install -> generate data -> train the baseline and its PSA twin -> test -> COCO AP with
#   pycocotools -> comparison table and plot -> publish the PSA checkpoint.
#
#   bash scripts/quickstart.sh [--tiny] [--arch res18|hrnet-w16|rtmpose-t] [--seeds N]
#
# Default: ResNet-18 SimpleBaseline twins (configs/synth/), 256 train / 64 val images, 24 epochs;
# about 15 minutes on 2 CPU cores. --tiny: 32 / 16 images, 2 epochs (a smoke run, AP near 0; CI).
# Artefacts go to work_dirs/quickstart[-tiny]/; the data to data/synth[-tiny]/ (reused when the
# generator's arguments are unchanged). EXP_DIR and DATA_DIR override these two folders.
# --seeds N: train each twin N times (randomness.seed 0..N-1, under <role>/seed-<k>/; a rerun
# continues a killed job) and report mean ± std over seeds with a pooled interval.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

TINY=0; ARCH=res18; SEEDS=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tiny) TINY=1; shift ;;
    --arch) ARCH=${2:-}; shift 2 || { echo "error: --arch needs a value (res18, hrnet-w16 or rtmpose-t)" >&2; exit 2; } ;;
    --seeds) SEEDS=${2:-}; shift 2 || true
             [[ $SEEDS =~ ^[1-9][0-9]*$ ]] || { echo "error: --seeds ${SEEDS:-(missing)}: needs a number of seeds, e.g. --seeds 3" >&2; exit 2; } ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1; usage: bash scripts/quickstart.sh [--tiny] [--arch res18|hrnet-w16|rtmpose-t] [--seeds N]" >&2; exit 2 ;;
  esac
done
BASE="$ROOT/configs/synth/td-hm_${ARCH}_dark-1xb16-24e_synth-128x96.py"
PSA="$ROOT/configs/synth/td-hm_${ARCH}-psa-p_dark-1xb16-24e_synth-128x96.py"
if [[ $ARCH == rtmpose-* ]]; then    # mmpose names RTMPose configs without an algorithm part
  BASE="$ROOT/configs/synth/${ARCH}_1xb16-80e_synth-128x96.py"
  PSA="$ROOT/configs/synth/${ARCH}-psa-p_1xb16-80e_synth-128x96.py"
  # one torch thread unless the user set it: RTMPose runs many small ops (depthwise convs, SiLU)
  # and each parallel one waits for every thread; on a loaded 2-core machine one synth epoch
  # took 645 s with the default threads and 42 s with one (docs/plugin.md)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
[[ -f "$BASE" && -f "$PSA" ]] || { echo "error: --arch $ARCH: no such synth configs in configs/synth/; use res18, hrnet-w16 or rtmpose-t" >&2; exit 2; }

START=$SECONDS
step() { printf '\n[quickstart %s | %dm%02ds] %s\n' "$1" $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$2"; }

step 1/6 "installing (bash scripts/install.sh; the same venv as the tests)"
bash "$ROOT/scripts/install.sh"
source "$ROOT/scripts/_python.sh"

if [[ $TINY == 1 ]]; then
  DATA=${DATA_DIR:-$ROOT/data/synth-tiny}; GEN=(--train-images 32 --val-images 16)
  EXP_DIR=${EXP_DIR:-$ROOT/work_dirs/quickstart-tiny}
else
  DATA=${DATA_DIR:-$ROOT/data/synth}; GEN=()
  EXP_DIR=${EXP_DIR:-$ROOT/work_dirs/quickstart}
fi
mkdir -p "$EXP_DIR"; EXP_DIR="$(cd "$EXP_DIR" && pwd)"
if [[ $TINY == 1 || -n ${DATA_DIR:-} ]]; then
  # Same-named configs that change only the data path (and for --tiny the schedule: 2 epochs),
  # so that the comparison still pairs the twins by name.
  mkdir -p "$EXP_DIR/configs"
  for c in "$BASE" "$PSA"; do
    {
      echo "_base_ = '$c'"
      echo "data_root = '$DATA/'"
      echo "train_dataloader = dict(dataset=dict(data_root=data_root))"
      echo "val_dataloader = dict(dataset=dict(data_root=data_root))"
      echo "test_dataloader = val_dataloader"
      echo "val_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val2017.json')"
      echo "test_evaluator = val_evaluator"
      if [[ $TINY == 1 ]]; then
        echo "train_cfg = dict(max_epochs=2, val_interval=2)"
        echo "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))"
      fi
    } > "$EXP_DIR/configs/$(basename "$c")"
  done
  BASE="$EXP_DIR/configs/$(basename "$BASE")"; PSA="$EXP_DIR/configs/$(basename "$PSA")"
fi

step 2/6 "generating the synthetic COCO-format dataset in $DATA"
STAMP="$DATA/.generated-with"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${GEN[*]:-default}" ]]; then
  echo "already there (same generator arguments): reusing it"
else
  "$PYTHON" -m psa_pose.data.synth --out "$DATA" --overwrite "${GEN[@]}"
  echo "${GEN[*]:-default}" > "$STAMP"
fi

step 3/6 "training and testing $(basename "$BASE" .py) and $(basename "$PSA" .py)"
if [[ -n $SEEDS ]]; then
  SEED_ARGS=(--seeds "$SEEDS"); RUNS=($(seq -f 'seed-%g' 0 $((SEEDS - 1))))
else
  SEED_ARGS=(); RUNS=(.)
fi
EXP_DIR="$EXP_DIR" NO_COMPARE=1 bash "$ROOT/scripts/compare_train.sh" "$BASE" "$PSA" 1 ${SEED_ARGS[@]+"${SEED_ARGS[@]}"}

step 4/6 "COCO keypoint AP with pycocotools"
GT="$DATA/annotations/person_keypoints_val2017.json"
for role in baseline psa; do
  for run in "${RUNS[@]}"; do
    dir=$EXP_DIR/$role/$run; dir=${dir%/.}
    echo "$role${SEEDS:+ $run}:"
    "$PYTHON" "$ROOT/scripts/eval_coco.py" --gt "$GT" --results "$dir/results.json" \
      --out "$dir/pycocotools.json"
  done
done

step 5/6 "comparison table with 95% intervals (paired bootstrap over the images), diagnosis and plots"
# --diagnose: where the twins differ (keypoint error classes, AP at OKS 0.9, the minimum ΔAP this
# val set can detect; docs/diagnosis.md); the full tables go to compare.md
"$PYTHON" "$ROOT/scripts/compare_ap.py" "$EXP_DIR/baseline" "$EXP_DIR/psa" --diagnose --out-dir "$EXP_DIR"

step 6/6 "publishing the PSA checkpoint"
# the checkpoint compare_train.sh tested, as test.py recorded it (with its sha256 and config,
# which publish_model.py checks; the metrics are CocoMetric's, equal to pycocotools')
PSA_RUN=$EXP_DIR/psa/${RUNS[0]}; PSA_RUN=${PSA_RUN%/.}      # with seeds: the first seed's
CKPT=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["checkpoint"])' \
       "$PSA_RUN/metrics.json")
mkdir -p "$EXP_DIR/release"
# --no-zoo: a model trained on generated data is no entry of the COCO model zoo
"$PYTHON" "$ROOT/scripts/publish_model.py" "$CKPT" "$EXP_DIR/release/$(basename "$PSA" .py)" \
  --metrics "$PSA_RUN/metrics.json" --no-zoo | tee "$EXP_DIR/release/publish.log"
# publish_model.py prints "published PATH (sha256 ...)"; an older release may sit beside it
RELEASED=$(sed -n 's/^published \(.*\) (sha256 .*/\1/p' "$EXP_DIR/release/publish.log")

step done "finished; the artefacts:"
cat <<EOF
  data             $DATA
  training logs    $EXP_DIR/{baseline,psa}/${SEEDS:+seed-<k>/}<timestamp>/<timestamp>.log
  checkpoints      $EXP_DIR/{baseline,psa}/${SEEDS:+seed-<k>/}*.pth
  COCO results     $EXP_DIR/{baseline,psa}/${SEEDS:+seed-<k>/}results.json
  pycocotools AP   $EXP_DIR/{baseline,psa}/${SEEDS:+seed-<k>/}pycocotools.json
  comparison       $EXP_DIR/compare.md (table above), compare.csv, compare.json
  plot             $EXP_DIR/compare.png
  diagnosis        $EXP_DIR/diagnose.png (tables in compare.md; docs/diagnosis.md)
  released model   $RELEASED
  demo             $PYTHON scripts/demo.py $PSA $RELEASED \\
                     $DATA/val2017/000001000001.jpg --out $EXP_DIR/demo.png
EOF
