#!/usr/bin/env python
"""Thin entry point: see psa_pose/tools/benchmark_coco.py."""
import os
import sys

# runs from any directory, with or without the package installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from psa_pose.tools.benchmark_coco import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
