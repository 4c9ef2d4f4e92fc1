"""Baseline checkpoints load into PSA models with only the PSA keys missing."""
import pytest
import torch
from mmengine.runner import save_checkpoint

from psa_pose.models import (CheckpointMismatchError, PSAHRNet, load_checkpoint_report,
                             psa_state_keys)
from tests.conftest import build_pose_model, mmpose_config

W32 = 'td-hm_hrnet-w32_8xb64-210e_coco-256x192'


@pytest.fixture(scope='module')
def baseline_ckpt(tmp_path_factory):
    """A full mmpose HRNet-W32 pose model checkpoint, as mmengine's Runner writes it."""
    torch.manual_seed(0)
    model = build_pose_model(W32, backbone_type='HRNet')
    path = tmp_path_factory.mktemp('ckpt') / 'hrnet_w32_baseline.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {'epoch': 210}}, str(path))
    return str(path), model.state_dict()


@pytest.mark.parametrize('psa_cfg', [dict(mode='p'), dict(mode='s', formulation='official')])
def test_full_pose_checkpoint_into_psa_model(baseline_ckpt, psa_cfg):
    path, base_sd = baseline_ckpt
    model = build_pose_model(W32, psa_cfg)
    report = load_checkpoint_report(model, path)
    psa_keys = psa_state_keys(model)
    assert sorted(report.missing_psa) == sorted(psa_keys)
    assert len(psa_keys) == 108 * (7 if psa_cfg['mode'] == 'p' else 10)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert sorted(report.loaded) == sorted(base_sd)
    sd = model.state_dict()
    assert all(torch.equal(sd[k], base_sd[k]) for k in base_sd)
    assert 'PSA tensors are not in the checkpoint' in report.summary()
    assert f'loaded {len(base_sd)} tensors' in report.summary()


def test_pretrained_backbone_init_from_pose_checkpoint(baseline_ckpt):
    """init_cfg=Pretrained with prefix='backbone.' as mmpose configs use it for the backbone."""
    path, base_sd = baseline_ckpt
    cfg = mmpose_config(W32).model.backbone
    cfg.pop('type')
    cfg.init_cfg = dict(type='Pretrained', checkpoint=path, prefix='backbone.')
    torch.manual_seed(1)
    backbone = PSAHRNet(**cfg, psa_cfg=dict(mode='p'))
    backbone.init_weights()
    sd = backbone.state_dict()
    for k, v in base_sd.items():
        if k.startswith('backbone.'):
            assert torch.equal(sd[k[len('backbone.'):]], v), k
    # the PSA blocks have their own init, not HRNet's normal(std=0.001)
    assert backbone.stage4[0].branches[3][0].psa.sp_v.weight.std() > 0.05


def test_wrong_architecture_is_refused(baseline_ckpt, tmp_path):
    path, _ = baseline_ckpt
    model = build_pose_model('td-hm_res50_8xb64-210e_coco-256x192', dict(mode='p'))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint_report(model, path)
    assert f'{path} does not fit the model: ' in str(err.value)
    assert '225 model keys missing from it' in str(err.value)
    assert 'backbone.conv1.weight: checkpoint [64, 3, 3, 3], model [64, 3, 7, 7]' in str(err.value)
    # refused before loading anything
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_shape_mismatch_is_refused(baseline_ckpt):
    path, _ = baseline_ckpt
    model = build_pose_model('td-hm_hrnet-w48_8xb32-210e_coco-256x192', dict(mode='p'))
    with pytest.raises(CheckpointMismatchError, match=r'keys with other shapes \(e.g. '):
        load_checkpoint_report(model, path)


def test_prefix_that_matches_nothing(baseline_ckpt):
    path, _ = baseline_ckpt
    with pytest.raises(CheckpointMismatchError, match="has no keys under prefix 'neck.'"):
        load_checkpoint_report(build_pose_model(W32, dict(mode='p')), path, prefix='neck')


def test_training_checkpoints_load_safely_without_the_warning(tmp_path, monkeypatch):
    """What a training checkpoint holds besides tensors (mmengine's message hub with numpy
    scalars of several dtypes, numpy arrays) loads with weights_only=True: mmengine's loader
    neither warns 'Could not safely load weights' nor falls back to full unpickling."""
    import numpy as np
    from mmengine.logging import MessageHub
    from mmengine.runner import checkpoint as mm_checkpoint

    from psa_pose.models.checkpoint import checkpoint_globals
    hub = MessageHub('test_safe_load')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('best_score', np.float32(0.25))
    ckpt = {'meta': {'seed': np.int64(7), 'flags': np.array([1, 2], np.uint8),
                     'flag': np.uint8(3), 'ok': np.bool_(True), 'h': np.float16(1.5)},
            'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict()}
    path = tmp_path / 'epoch_1.pth'
    torch.save(ckpt, path)
    logged = []
    monkeypatch.setattr(mm_checkpoint, 'print_log', lambda msg, **kw: logged.append(msg))
    loaded = mm_checkpoint._safe_torch_load(str(path), map_location='cpu')
    assert logged == []
    assert loaded['meta']['flag'] == 3 and loaded['meta']['flags'].dtype == np.uint8
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    # beyond mmengine's own allow-list, only numpy's dtype classes
    added = set(checkpoint_globals()) - set(mm_checkpoint.get_torch_safe_globals())
    assert added and all(issubclass(g, np.dtype) for g in added)


def test_our_loads_stay_safe_after_mmengine_loaded_one(tmp_path):
    """mmengine's loader enters torch's ``safe_globals`` context, whose exit removes its
    entries from torch's global allow-list even though they were there before; our own loads
    (the fit rule, publish) must still read a training checkpoint with weights_only=True after
    that, not fall back to full unpickling."""
    import pickle

    import numpy as np
    from mmengine.logging import MessageHub
    from mmengine.runner import checkpoint as mm_checkpoint

    from psa_pose.models.checkpoint import load_weights_only
    hub = MessageHub('test_safe_load_after_mmengine')
    hub.update_scalar('train/loss', 0.5)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'seed': np.int64(7)}, 'state_dict': {'w': torch.ones(2)},
                'message_hub': hub.state_dict()}, path)
    mm_checkpoint._safe_torch_load(str(path), map_location='cpu')
    with pytest.raises(pickle.UnpicklingError):     # what the context's exit leaves behind
        torch.load(path, map_location='cpu', weights_only=True)
    loaded = load_weights_only(str(path))
    assert loaded['meta']['seed'] == 7 and torch.equal(loaded['state_dict']['w'], torch.ones(2))
