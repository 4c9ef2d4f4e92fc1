#!/usr/bin/env bash
# Train on one machine without a launcher: bash scripts/train.sh CONFIG [train.py args]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 1 ]] || { echo "usage: $0 CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]" >&2; exit 2; }
exec "$PYTHON" "$ROOT/scripts/train.py" "$@"
