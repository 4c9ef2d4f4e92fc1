#!/usr/bin/env python
"""Thin entry point: see psa_pose/deploy/onnx_infer.py (onnxruntime, numpy and OpenCV only: the
package registers nothing where torch and mmpose are not installed)."""
import os
import sys

# runs from any directory, with or without the package installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from psa_pose.deploy.onnx_infer import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
