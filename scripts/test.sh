#!/usr/bin/env bash
# Set up the venv (scripts/install.sh, a no-op when it is up to date), then run the tests:
#   bash scripts/test.sh        the default tier: every test not marked slow (a few minutes)
#   bash scripts/test.sh --all  both tiers: adds the subprocess workflows, interruption, quickstart,
#                               the full config sweep, compile and distributed tests
# Other arguments go to pytest, e.g. `bash scripts/test.sh -k psa -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TIER=(-m "not slow")
if [[ "${1:-}" == "--all" ]]; then
  TIER=()
  shift
fi
bash "$ROOT/scripts/install.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -q ${TIER[@]+"${TIER[@]}"} "$@"
