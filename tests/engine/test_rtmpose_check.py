"""train.py --check on an RTMPose + PSA config (issue 23), offline: the made-up COCO layout of
scripts/prepare_coco.sh and a made-up copy of RTMPose's pretrained CSPNeXt in the cache."""
import os
import sys

import pytest
import torch

from psa_pose.config import build_model, config_files, load_config
from tests.conftest import REPO, SCRIPT_ENV, run_script
from tests.data.test_prepare_coco import archives, prepare  # noqa: F401  (a fixture)

CONFIG = config_files()['rtmpose-t-psa-p_8xb256-420e_coco-256x192']


def test_train_check_passes_for_an_rtmpose_psa_config(archives, tmp_path):  # noqa: F811
    # RTMPose's train pipeline builds albumentations' transforms (requirements-nodeps.txt)
    pytest.importorskip('albumentations', reason='albumentations is not installed: bash '
                        'scripts/install.sh installs it (requirements-nodeps.txt)')
    src, manifest = archives
    assert prepare(tmp_path / 'data' / 'coco', '--from', src, '--manifest', manifest,
                   cwd=tmp_path).returncode == 0
    env = {**SCRIPT_ENV, 'TORCH_HOME': str(tmp_path / 'torch')}
    cfg = load_config(CONFIG)
    init = cfg.model.backbone.backbone.init_cfg
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / os.path.basename(init.checkpoint)
    cached.parent.mkdir(parents=True)
    # RTMPose's backbone weights come from a pose checkpoint ('backbone.' keys): the baseline
    # CSPNeXt's keys and shapes (zeros), without the PSA blocks, as published
    model = build_model(cfg)
    torch.save({'state_dict': {f'backbone.{k}': torch.zeros_like(v)
                               for k, v in model.backbone.state_dict().items()
                               if '.psa.' not in k}}, cached)
    res = run_script(sys.executable, f'{REPO}/scripts/train.py', CONFIG, '--check',
                     cwd=tmp_path, env=env, check=False, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert f'pretrained: model.backbone.backbone.init_cfg.checkpoint: {init.checkpoint} -> ' \
           f'{cached} (in the local cache)' in lines
    assert lines[-1].startswith('check passed: the train run of ')
    assert not (tmp_path / 'work_dirs').exists()
