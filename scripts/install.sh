#!/usr/bin/env bash
# Build (or bring up to date) the project's virtual environment in <repo>/.venv.
#
# Idempotent: a stamp holds the hash of the requirement files and of this script; when they are
# unchanged the venv is reused in a second. Set PYTHON to choose the interpreter (3.11 needed for
# the torch wheels this machine has on disk). Usage: bash scripts/install.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.psa_pose_install_stamp"
PYTHON="${PYTHON:-python3}"

want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" "$ROOT/requirements-export.txt" \
        "$ROOT/requirements-source.txt" "$ROOT/pyproject.toml" \
        "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "[install] $VENV is up to date"
  exit 0
fi

step() { echo "[install] $(date +%H:%M:%S) $*"; }

# torch 2.14.1 + torchvision (a CUDA build, the pair this machine has on disk) take about 5.6 GB
# in the venv; with the rest of the stack about 6 GB. A full disk shows up as an OSError deep in
# pip after minutes, so say it up front, in one line, with what to do.
need_gb="${PSA_POSE_INSTALL_NEED_GB:-7}"
free_kb="$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')"
if [[ -n "$free_kb" && "$free_kb" -lt $((need_gb * 1024 * 1024)) ]]; then
  echo "[install] error: only $((free_kb / 1024 / 1024)) GB free on the disk holding $ROOT;" \
       "the venv needs about $need_gb GB: free space (old clones' .venv folders) and run again" >&2
  exit 1
fi

# pip's notes about this machine's local package mirrors are noise here.
pip_q() {
  local rc=0
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" >"$VENV/pip.log" 2>&1 || rc=$?
  grep -v -e "is ignored: it is neither a file nor a directory" "$VENV/pip.log" || true
  return "$rc"
}

# A venv from older requirement files is made anew, not updated: pip keeps an installed package
# whose pin did not change, so a wheel built against numpy 1 (xtcocotools) would stay and fail at
# import under numpy 2 with "numpy.dtype size changed". pip's cache makes the rebuild quick.
step "creating $VENV with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv --clear "$VENV"
rm -f "$STAMP"
step "installing requirements.txt and requirements-export.txt (torch is large: about 2 minutes)"
pip_q install --progress-bar off -q -r "$ROOT/requirements.txt" -r "$ROOT/requirements-export.txt"
step "building xtcocotools from its sdist against numpy 2 (about 10 s; needs a C compiler: apt-get install gcc)"
pip_q install --progress-bar off -q --no-deps --no-build-isolation -r "$ROOT/requirements-source.txt"
step "installing requirements-nodeps.txt without their broken dependency lists"
pip_q install --progress-bar off -q --no-deps -r "$ROOT/requirements-nodeps.txt"
step "installing psa_pose (editable)"
pip_q install --progress-bar off -q --no-deps --no-build-isolation -e "$ROOT"

# mmcv-lite has no compiled ops; let plain `import mmpose.models` work in this venv too.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import mmcv_ops_placeholder; mmcv_ops_placeholder.install()" > "$site/psa_pose_mmcv_ops.pth"

step "checking the stack imports"
"$VENV/bin/python" - <<'PY'
import warnings
warnings.simplefilter('ignore')
import mmengine, mmcv, mmpose, torch, torchvision
import mmpose.apis, mmpose.evaluation, mmpose.models  # noqa: F401
import onnx, onnxruntime, onnxscript, mmdeploy_runtime  # noqa: F401  (requirements-export.txt)
import xtcocotools.cocoeval, pycocotools.cocoeval, cv2  # noqa: F401  (compiled against numpy 2)
import psa_pose  # noqa: F401
print(f'[install] torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, mmpose {mmpose.__version__}')
PY
echo "$want" > "$STAMP"
step "done: activate with 'source .venv/bin/activate'"
