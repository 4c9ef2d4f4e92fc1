"""psa_pose: Polarized Self-Attention for top-down pose estimation on MMPose.

Importing the package registers its modules in mmpose's registries. It first installs the
stand-in for mmcv's compiled ops (``mmcv_ops_placeholder``), which engages only where mmcv-lite
is installed, because mmpose imports ``mmcv.ops`` at import time.
"""
import os

import mmcv_ops_placeholder

# albumentations (RTMPose's recipe; mmpose imports it with its transforms) asks PyPI for a newer
# version on every import and warns on stderr; runs here are offline or must not depend on it
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

mmcv_ops_placeholder.install()

from . import engine  # noqa: E402,F401  (registers the training hooks tools/train.py adds)
from .data import coco  # noqa: E402,F401  (registers the checked dataset and image loading)
from .models import (PolarizedSelfAttention, PSAHRNet,  # noqa: E402
                     PSAResNet)

__version__ = '0.1.0'
__all__ = ['PolarizedSelfAttention', 'PSAHRNet', 'PSAResNet', '__version__']
