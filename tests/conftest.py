import os
import warnings

import pytest

warnings.filterwarnings('ignore', category=DeprecationWarning)

import psa_pose  # noqa: E402,F401  (registers PSA modules; installs the mmcv-ops placeholder)
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared')
MINI_COCO = os.path.join(SHARED, 'data', 'coco-val2017-mini')

init_default_scope('mmpose')


def mmpose_config(name: str) -> Config:
    """One of mmpose's own COCO top-down heatmap configs, by file name without '.py'."""
    import mmpose
    return Config.fromfile(os.path.join(os.path.dirname(mmpose.__file__), '.mim', 'configs',
                                        'body_2d_keypoint', 'topdown_heatmap', 'coco',
                                        name + '.py'))


def build_pose_model(name: str, psa_cfg=None, backbone_type=None):
    """mmpose's model of config ``name`` with its backbone swapped for the PSA subclass
    (``psa_cfg=None``: the PSA subclass without PSA) and no pretrained weights."""
    from mmpose.registry import MODELS
    cfg = mmpose_config(name).model
    cfg.backbone.pop('init_cfg', None)
    if backbone_type is None:
        backbone_type = {'HRNet': 'PSAHRNet', 'ResNet': 'PSAResNet'}[cfg.backbone.type]
    if backbone_type.startswith('PSA'):
        cfg.backbone.psa_cfg = psa_cfg
    cfg.backbone.type = backbone_type
    return MODELS.build(cfg)


@pytest.fixture(scope='session')
def mini_coco():
    if not os.path.isdir(MINI_COCO):
        pytest.fail(f'{MINI_COCO} is missing: the tests need ../shared beside the repository')
    return MINI_COCO
