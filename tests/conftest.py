import os
import subprocess
import sys
import warnings

import pytest

warnings.filterwarnings('ignore', category=DeprecationWarning)

import psa_pose  # noqa: E402,F401  (registers PSA modules; installs the mmcv-ops placeholder)
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from psa_pose import zoo  # noqa: E402
from psa_pose.models.backbones import PSA_BACKBONES  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared')
MINI_COCO = os.path.join(SHARED, 'data', 'coco-val2017-mini')

init_default_scope('mmpose')


def mmpose_config(name: str) -> Config:
    """One of mmpose's own configs, by file name without '.py'."""
    return Config.fromfile(zoo.mmpose_config_file(name))


def build_pose_model(name: str, psa_cfg=None, backbone_type=None):
    """mmpose's model of config ``name`` with its backbone swapped for the PSA subclass
    (``psa_cfg=None``: the PSA subclass without PSA) and no pretrained weights."""
    cfg = mmpose_config(name)
    backbone = cfg.model.backbone
    if backbone_type is None:
        backbone_type = PSA_BACKBONES[backbone.type]
    if backbone_type.startswith('PSA'):
        backbone.psa_cfg = psa_cfg
    backbone.type = backbone_type
    return zoo.build_model(cfg)


@pytest.fixture(scope='session')
def mini_coco():
    if not os.path.isdir(MINI_COCO):
        pytest.fail(f'{MINI_COCO} is missing: the tests need ../shared beside the repository')
    return MINI_COCO


# The scripts run as a user runs them: from an unrelated directory, without PYTHONPATH, with
# this interpreter for the shell scripts.
SCRIPT_ENV = {**os.environ, 'PYTHON': sys.executable, 'PYTHONWARNINGS': 'ignore'}


def run_script(*cmd, cwd, env=None, check=True, timeout=1500) -> subprocess.CompletedProcess:
    """Run a command; with ``check``, fail the test with its output tail if it fails."""
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or SCRIPT_ENV,
                         capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        pytest.fail(f'{cmd} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}')
    return out


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: end-to-end runs (training, torchrun, Slurm)')
