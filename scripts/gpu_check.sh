#!/usr/bin/env bash
# On a machine with a CUDA GPU: the CUDA tests (pytest -m cuda: fast vs direct PSA under fp16/bf16
# autocast at HRNet-W48 384x288 shapes in both memory formats, AMP training steps, DDP) and the
# benchmark on the GPU (fp32 and AMP; HRNet-W32 and ResNet-50 at 256x192; forward at batch 1 and
# 16, a training step at batch 32, peak memory; timed after torch.cuda.synchronize()), in about
# 7.5 minutes on an H200 (measured, docs/gpu.md). Prints one Markdown summary to paste into an
# issue (docs/gpu.md says what is in it); writes it to OUT/report.md, with OUT/report.json and
# the raw outputs beside it.
# Usage: bash scripts/gpu_check.sh [OUT]   (default work_dirs/gpu_check)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
OUT="${1:-work_dirs/gpu_check}"
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "error: torch sees no CUDA GPU here (torch.cuda.is_available() is False); run this on a GPU machine" >&2
  exit 2
fi
mkdir -p "$OUT"
start=$(date +%s)
echo "[gpu_check] $(date +%H:%M:%S) CUDA tests"
(cd "$ROOT" && "$PYTHON" -m pytest tests -m cuda -q -rfEs -p no:cacheprovider) 2>&1 | tee "$OUT/cuda-tests.txt"
tests_rc=${PIPESTATUS[0]}
bench_rc=0
for kind in fp32 amp block-amp; do
  echo "[gpu_check] $(date +%H:%M:%S) benchmark, $kind"
  case $kind in
    fp32) flag=(--no-block) ;;
    amp) flag=(--no-block --amp) ;;
    block-amp) flag=(--no-models --amp) ;;   # the block alone in float16: the fp16-safe path's cost
  esac
  "$PYTHON" "$ROOT/scripts/benchmark.py" --device cuda --fwd-batches 1 16 \
      --train-batch 32 --repeats 10 "${flag[@]}" --out "$OUT/benchmark-$kind.json" \
      > "$OUT/benchmark-$kind.md" || bench_rc=$?
done
"$PYTHON" - "$OUT" "$tests_rc" "$bench_rc" "$(( $(date +%s) - start ))" <<'PY'
import json, os, sys
out, tests_rc, bench_rc, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import torch
tests = open(os.path.join(out, 'cuda-tests.txt')).read().strip().splitlines()
failed = [t for t in tests if t.startswith(('FAILED', 'ERROR', 'SKIPPED'))]
report = {'cuda_tests': {'exit_code': tests_rc, 'summary': tests[-1] if tests else '',
                         'not_passed': failed},
          'environment': {'gpu': torch.cuda.get_device_name(), 'torch': torch.__version__,
                          'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version()},
          'seconds': seconds, 'benchmark': {}}
env = report['environment']
md = [f'# GPU check ({seconds} s)', '', f"{env['gpu']}, torch {env['torch']}, CUDA "
      f"{env['cuda']}, cuDNN {env['cudnn']}", '',
      f'CUDA tests: {report["cuda_tests"]["summary"]} (exit code {tests_rc})', '']
md += [f'- {t}' for t in failed] + ([''] if failed else [])
for kind in ('fp32', 'amp', 'block-amp'):
    path = os.path.join(out, f'benchmark-{kind}.json')
    if os.path.exists(path):
        report['benchmark'][kind] = json.load(open(path))
        md += [f'## Benchmark, {kind}', '', open(os.path.join(out, f'benchmark-{kind}.md')).read()]
tmp = os.path.join(out, '.report.json.tmp')
json.dump(report, open(tmp, 'w'), indent=2)
os.replace(tmp, os.path.join(out, 'report.json'))
open(os.path.join(out, 'report.md'), 'w').write('\n'.join(md) + '\n')
print('\n'.join(md))
PY
echo "[gpu_check] wrote $OUT/report.json and $OUT/report.md"
[[ $tests_rc -eq 0 && $bench_rc -eq 0 ]]
