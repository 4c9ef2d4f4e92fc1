#!/usr/bin/env bash
# COCO 2017 person keypoints into the layout the configs read: see psa_pose/tools/prepare_coco.py.
# bash scripts/prepare_coco.sh DATA_DIR [--from DIR] [--manifest JSON] [--no-detections]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
[[ $# -ge 1 ]] || { echo "usage: $0 DATA_DIR [--from DIR] [--manifest JSON] [--no-detections]" >&2; exit 2; }
exec "$PYTHON" -m psa_pose.tools.prepare_coco "$@"
