"""psa_pose: Polarized Self-Attention for top-down pose estimation on MMPose.

Importing the package registers what configs name, in mmpose's registries: the PSA backbones
(:mod:`psa_pose.models`), the person-only COCO dataset and checked image loading
(:mod:`psa_pose.data.coco`), and the training hooks a run's dumped config lists
(:mod:`psa_pose.engine`). It first installs the stand-in for mmcv's compiled ops
(``mmcv_ops_placeholder``), which engages only where mmcv-lite is installed, because mmpose
imports ``mmcv.ops`` at import time. Nothing else is imported: the command-line tools, the
evaluation and deployment modules load when they are used.

Where torch or mmpose is not installed (a deployment machine with onnxruntime only), the package
registers nothing, so that :mod:`psa_pose.deploy.onnx_infer` still imports.
"""
import os
from importlib.util import find_spec

# albumentations (RTMPose's recipe; mmpose imports it with its transforms) asks PyPI for a newer
# version on every import and warns on stderr; runs here are offline or must not depend on it
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

__version__ = '0.1.0'
__all__ = ['__version__']

if find_spec('torch') is not None and find_spec('mmpose') is not None:
    import mmcv_ops_placeholder

    mmcv_ops_placeholder.install()

    from . import engine  # noqa: E402,F401  (registers the hooks of dumped training configs)
    from .data import coco  # noqa: E402,F401  (registers the checked dataset and image loading)
    from .models import PolarizedSelfAttention, PSAHRNet, PSAResNet  # noqa: E402

    __all__ += ['PolarizedSelfAttention', 'PSAHRNet', 'PSAResNet']
