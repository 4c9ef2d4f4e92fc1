#!/usr/bin/env bash
# On a machine with a CUDA GPU: the CUDA tests (pytest -m cuda) and the benchmark on the GPU
# (fp32 and AMP; HRNet-W32 and ResNet-50 at 256x192; forward at batch 1 and 16, a training step
# at batch 32, peak memory), in about 8 minutes. Writes OUT/report.json and OUT/report.md.
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
(cd "$ROOT" && "$PYTHON" -m pytest tests -m cuda -q -p no:cacheprovider) 2>&1 | tee "$OUT/cuda-tests.txt"
tests_rc=${PIPESTATUS[0]}
bench_rc=0
for kind in fp32 amp; do
  echo "[gpu_check] $(date +%H:%M:%S) benchmark, $kind"
  flag=(); [[ $kind == amp ]] && flag=(--amp)
  "$PYTHON" "$ROOT/scripts/benchmark.py" --device cuda --no-block --fwd-batches 1 16 \
      --train-batch 32 --repeats 10 "${flag[@]}" --out "$OUT/benchmark-$kind.json" \
      > "$OUT/benchmark-$kind.md" || bench_rc=$?
done
"$PYTHON" - "$OUT" "$tests_rc" "$bench_rc" "$(( $(date +%s) - start ))" <<'PY'
import json, os, sys
out, tests_rc, bench_rc, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tests = open(os.path.join(out, 'cuda-tests.txt')).read().strip().splitlines()
report = {'cuda_tests': {'exit_code': tests_rc, 'summary': tests[-1] if tests else ''},
          'seconds': seconds, 'benchmark': {}}
md = [f'# GPU check ({seconds} s)', '', f'CUDA tests: {report["cuda_tests"]["summary"]} '
      f'(exit code {tests_rc})', '']
for kind in ('fp32', 'amp'):
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
