import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from types import SimpleNamespace
from typing import Optional

import pytest

warnings.filterwarnings('ignore', category=DeprecationWarning)

import psa_pose  # noqa: E402,F401  (registers PSA modules; installs the mmcv-ops placeholder)
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from psa_pose.config import build_model, mmpose_config_file
from psa_pose.models.backbones import PSA_BACKBONES  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real COCO images: PSA_POSE_COCO_MINI, else ../shared beside the repository;
# PSA_POSE_COCO_MINI=none looks nowhere (how a plain clone runs, for checking the skips).
COCO_MINI_VAR = 'PSA_POSE_COCO_MINI'
SHARED_COCO_MINI = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'coco-val2017-mini')
COCO_MINI_FILES = ('000000000785.jpg', '000000040083.jpg', '000000196141.jpg',
                   '000000197388.jpg', 'test_coco.json', 'test_coco_det_AP_H_56.json')
# PSA_POSE_REQUIRE_DATA=1 (CI): a test that needs the real images fails where it would skip
REQUIRE_DATA_VAR = 'PSA_POSE_REQUIRE_DATA'

init_default_scope('mmpose')


def mmpose_config(name: str) -> Config:
    """One of mmpose's own configs, by file name without '.py'."""
    return Config.fromfile(mmpose_config_file(name))


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
    return build_model(cfg)


def coco_mini_dir() -> Optional[str]:
    """The folder the real-image tests read, or None where there is none (the one lookup)."""
    value = os.environ.get(COCO_MINI_VAR)
    if value is not None:
        return None if value.lower() == 'none' else value
    return SHARED_COCO_MINI


def coco_mini_missing(folder: Optional[str]) -> Optional[str]:
    """Why ``folder`` cannot serve the real-image tests (one line), or None when it can."""
    how = (f'set {COCO_MINI_VAR} to a folder with {", ".join(COCO_MINI_FILES)} (mmpose\'s '
           f'repository has them under tests/data/coco/), or put it at {SHARED_COCO_MINI}')
    if folder is None:
        return f'needs the real COCO images, and {COCO_MINI_VAR}=none: {how}'
    missing = [f for f in COCO_MINI_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        return f'needs the real COCO images: {folder} lacks {missing[0]}; {how}'
    return None


@pytest.fixture(scope='session')
def mini_coco() -> str:
    """The 4 real COCO val2017 images with keypoints and detections; skips (fails under
    PSA_POSE_REQUIRE_DATA=1) where they are not found."""
    folder = coco_mini_dir()
    why = coco_mini_missing(folder)
    if why:
        if os.environ.get(REQUIRE_DATA_VAR) == '1':
            pytest.fail(f'{why} ({REQUIRE_DATA_VAR}=1)', pytrace=False)
        pytest.skip(why)
    return folder


def forget_mmengine_instances() -> None:
    """mmengine keeps one visualizer and one logger per process and experiment name
    (ManagerMixin instances), bound to the first Runner's work dir and to the stderr of the
    test that made them (pytest closes it afterwards): each in-process run needs its own, as in
    a fresh process. The name ends in a timestamp to the second, so two runs of one test that
    start within the same second would share the first run's log file."""
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer
    from mmpose.visualization import PoseLocalVisualizer
    for cls in (Visualizer, PoseLocalVisualizer, MMLogger):
        cls._instance_dict.clear()


@pytest.fixture(autouse=True)
def fresh_mmengine_instances():
    """Every test that runs a tool in this process starts, as a fresh process would, without
    the logger and visualizer of an earlier test."""
    yield
    forget_mmengine_instances()


# -- generated data: what every test without the real images trains and evaluates on ----------
TINY_COCO_VAR = 'PSA_POSE_TINY_COCO'    # read by the tiny configs of tests/configs
TINY_COCO_SEED = 0           # with 6 images: 12 people, each with keypoints


def make_tiny_coco(folder: str) -> str:
    """Generated COCO person keypoints in the mini COCO's flat layout: 6 images (192x256, 12
    people) and ``test_coco.json`` in ``folder``, and ``test_coco_det.json``, person detections (the
    ground-truth boxes, scored), as mmpose's ``bbox_file`` reads them."""
    from psa_pose.data import synth
    tmp = os.path.join(folder, 'synth')
    synth.generate(tmp, seed=TINY_COCO_SEED, train_images=1, val_images=6, image_size=(192, 256))
    for name in os.listdir(os.path.join(tmp, 'val2017')):
        os.replace(os.path.join(tmp, 'val2017', name), os.path.join(folder, name))
    ann = os.path.join(folder, 'test_coco.json')
    os.replace(os.path.join(tmp, 'annotations', 'person_keypoints_val2017.json'), ann)
    shutil.rmtree(tmp)
    with open(ann) as f:
        gt = json.load(f)
    dets = [{'image_id': a['image_id'], 'category_id': 1, 'bbox': a['bbox'],
             'score': round(0.99 - 0.01 * i, 2)} for i, a in enumerate(gt['annotations'])]
    with open(os.path.join(folder, 'test_coco_det.json'), 'w') as f:
        json.dump(dets, f)
    return folder


def _tiny_coco_folder() -> str:
    """Where the session's generated data goes: set in the environment now (scripts the tests
    start, and the tiny configs, read ``PSA_POSE_TINY_COCO``), filled on first use."""
    folder = os.environ.get(TINY_COCO_VAR)
    if folder:
        return folder               # a script of a test, or a nested session
    folder = tempfile.mkdtemp(prefix='psa_pose_tiny_coco_')
    atexit.register(shutil.rmtree, folder, True)
    os.environ[TINY_COCO_VAR] = folder
    return folder


TINY_COCO_FOLDER = _tiny_coco_folder()


def tiny_coco_dir() -> str:
    """The generated data, made on first use (about 0.3 s) and once per test session; modules
    that read it while they are collected call this, everything else gets it from the
    :func:`tiny_coco` fixture."""
    if not os.path.isfile(os.path.join(TINY_COCO_FOLDER, 'test_coco.json')):
        make_tiny_coco(TINY_COCO_FOLDER)
    return TINY_COCO_FOLDER


@pytest.fixture(scope='session', autouse=True)
def tiny_coco() -> str:
    """The generated data of the tiny configs (tests/configs): 6 images, 12 people, their
    keypoints (test_coco.json) and detections (test_coco_det.json). Autouse: the tiny configs
    find it through the environment, whichever test loads them."""
    return tiny_coco_dir()


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


def in_process(capsys, main, *argv) -> SimpleNamespace:
    """A tool's ``main(argv)`` in this process, as its script runs it: exit code, stdout and
    stderr. The default tier runs the tools this way; a subprocess only where the process
    boundary itself is tested (test_train_script_missing_data_root, the exit-code tests)."""
    try:
        code = main([str(a) for a in argv]) or 0
    except SystemExit as e:
        code = e.code
    finally:
        forget_mmengine_instances()
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: end-to-end runs (training, torchrun, Slurm)')
