#!/usr/bin/env python
"""Thin entry point: see psa_pose/deploy/onnx_infer.py (onnxruntime, numpy and OpenCV only).

The module is loaded from its file, not through the psa_pose package, whose __init__ imports
torch and mmpose: this script runs where only onnxruntime, numpy and opencv-python are installed.
"""
import importlib.util
import os
import sys

_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     'psa_pose', 'deploy', 'onnx_infer.py')
_spec = importlib.util.spec_from_file_location('onnx_infer', _FILE)
onnx_infer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(onnx_infer)

if __name__ == '__main__':
    sys.exit(onnx_infer.main())
