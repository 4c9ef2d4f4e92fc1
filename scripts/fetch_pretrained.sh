#!/usr/bin/env bash
# The configs' pretrained ImageNet weights into the local torch hub cache (offline nodes): see
# psa_pose/tools/pretrained.py. bash scripts/fetch_pretrained.sh [CONFIG ...] [--source DIR_OR_URL] [--list]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$PYTHON" -m psa_pose.tools.pretrained "$@"
