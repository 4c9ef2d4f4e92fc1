"""train.py --check on an RTMPose + PSA config (issue 23), offline: the made-up COCO layout of
scripts/prepare_coco.sh and a made-up copy of RTMPose's pretrained CSPNeXt in the cache."""
import os

import pytest
import torch

from psa_pose.config import build_model, config_files, load_config
from psa_pose.tools import train as train_tool
from tests.conftest import in_process
from tests.data.test_prepare_coco import archives, prepare  # noqa: F401  (a fixture)

CONFIG = config_files()['rtmpose-t-psa-p_8xb256-420e_coco-256x192']


def test_train_check_passes_for_an_rtmpose_psa_config(archives, tmp_path, capsys,  # noqa: F811
                                                       monkeypatch):
    # RTMPose's train pipeline builds albumentations' transforms (requirements-nodeps.txt)
    pytest.importorskip('albumentations', reason='albumentations is not installed: bash '
                        'scripts/install.sh installs it (requirements-nodeps.txt)')
    src, manifest = archives
    assert prepare(tmp_path / 'data' / 'coco', '--from', src, '--manifest', manifest,
                   cwd=tmp_path).returncode == 0
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.chdir(tmp_path)     # the config's data root is relative, as a user runs it
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
    res = in_process(capsys, train_tool.main, CONFIG, '--check')
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert f'pretrained: model.backbone.backbone.init_cfg.checkpoint: {init.checkpoint} -> ' \
           f'{cached} (in the local cache)' in lines
    assert lines[-1].startswith('check passed: the train run of ')
    assert not (tmp_path / 'work_dirs').exists()
