#!/usr/bin/env bash
# Set up the venv (scripts/install.sh, a no-op when it is up to date), then run the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k psa -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/install.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -q "$@"
