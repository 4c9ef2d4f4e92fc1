#!/usr/bin/env python
"""Thin entry point: see psa_pose/tools/update_model_zoo.py."""
import os
import sys
import warnings

# runs from any directory, with or without the package installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings('ignore')

from psa_pose.tools.update_model_zoo import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
