"""WithPSA / add_psa_to: PSA in every mmpose backbone that has residual blocks, tiny versions of
each (the real widths are the configs' business, tests/test_configs.py)."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS

from psa_pose.models import PolarizedSelfAttention, PSAHRNet, PSAResNet
from psa_pose.models.backbones import REFUSED, WithPSA, add_psa_to
from psa_pose.models.checkpoint import compare_state_dict, fit_problem, is_psa_key
from psa_pose.models.psa import PSAConfigError

init_default_scope('mmpose')
PAPER_P = dict(mode='p', formulation='paper')

HRNET_TINY = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                num_channels=(8, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                num_channels=(8, 16)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                num_channels=(8, 16, 32)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                num_channels=(8, 16, 32, 64)))
RESNET_TINY = dict(depth=50, stem_channels=16, base_channels=8)
CSPNEXT_TINY = dict(deepen_factor=0.167, widen_factor=0.125, out_indices=(2, 3, 4))
RSN_TINY = dict(unit_channels=16, num_stages=1, num_units=2, num_blocks=[1, 1],
                res_top_channels=64)

# every backbone WithPSA supports: (tiny config, its number of residual blocks, input side)
SUPPORTED = {
    'ResNet': (dict(type='ResNet', **RESNET_TINY), 16, 64),          # 3 + 4 + 6 + 3
    'ResNet-18': (dict(type='ResNet', depth=18, base_channels=8, stem_channels=8), 8, 64),
    'ResNetV1d': (dict(type='ResNetV1d', **RESNET_TINY), 16, 64),
    'ResNeXt': (dict(type='ResNeXt', groups=2, width_per_group=4, **RESNET_TINY), 16, 64),
    'SEResNet': (dict(type='SEResNet', se_ratio=4, **RESNET_TINY), 16, 64),
    'SEResNeXt': (dict(type='SEResNeXt', groups=2, width_per_group=4, se_ratio=4,
                       **RESNET_TINY), 16, 64),
    'ResNeSt': (dict(type='ResNeSt', width_per_group=8, radix=2, reduction_factor=2,
                     **RESNET_TINY), 16, 64),
    'SCNet': (dict(type='SCNet', **RESNET_TINY), 16, 128),      # its pooling needs 4x4 at /32
    'RegNet': (dict(type='RegNet', stem_channels=8, base_channels=8,
                    arch=dict(w0=8, wa=8.0, wm=2.0, group_w=4, depth=6, bot_mul=1.0)), 6, 64),
    'HRNet': (dict(type='HRNet', extra=HRNET_TINY), 1 + 2 + 3 + 4, 64),
    'MSPN': (dict(type='MSPN', **RSN_TINY), 2, 64),
    'RSN': (dict(type='RSN', num_steps=2, expand_times=8, **RSN_TINY), 2, 64),
    'ViPNAS_ResNet': (dict(type='ViPNAS_ResNet', depth=50, wid=[8, 8, 16, 16, 32],
                           dep=[None, 1, 1, 1, 1], ks=[3, 3, 3, 3, 3], group=[None, 1, 1, 1, 1],
                           att=[None, True, False, True, False]), 4, 64),
    'HourglassNet': (dict(type='HourglassNet', downsample_times=1, num_stacks=1,
                          stage_channels=(256, 16), stage_blocks=(1, 1), feat_channel=16),
                     6, 64),
    'CSPNeXt': (dict(type='CSPNeXt', **CSPNEXT_TINY), 4, 64),
    'mmdet.CSPNeXt': (dict(_scope_='mmdet', type='CSPNeXt', **CSPNEXT_TINY), 4, 64),
}
# backbones with frozen_stages / with_cp, and the key prefix of their stage 1
FREEZES = {'ResNet': 'layer1.', 'ResNeXt': 'layer1.', 'SEResNet': 'layer1.',
           'HRNet': 'layer1.', 'CSPNeXt': 'stage1.', 'mmdet.CSPNeXt': 'stage1.',
           'ViPNAS_ResNet': 'layer1.'}
# (the 50-layer ones take 10-45 s on a loaded 2-core machine: slow tier)
WITH_CP = ['ResNet-18', 'ResNeSt', 'HRNet', 'ViPNAS_ResNet'] + [
    pytest.param(n, marks=pytest.mark.slow) for n in ('ResNetV1d', 'SEResNeXt')]


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def _pair(name, **kwargs):
    """(baseline, PSA twin with its weights) of backbone ``name``, in eval mode."""
    cfg = dict(SUPPORTED[name][0], **kwargs)
    torch.manual_seed(0)
    base = MODELS.build(copy.deepcopy(cfg))
    psa = MODELS.build(dict(type='WithPSA', backbone=cfg, psa_cfg=PAPER_P))
    base.eval(), psa.eval()       # (some backbones' train() returns None)
    return base, psa


def _input(name, batch=1):
    side = SUPPORTED[name][2]
    return torch.rand(batch, 3, side, side)


@pytest.mark.parametrize('name', sorted(SUPPORTED))
def test_with_psa_is_the_baseline_plus_one_psa_per_residual_block(name):
    base, psa = _pair(name)
    blocks = psa.psa_block_names()
    assert len(blocks) == SUPPORTED[name][1]
    assert all(isinstance(psa.get_submodule(b), PolarizedSelfAttention) for b in blocks)
    assert isinstance(psa, type(base))
    # keys: the baseline's, in its order, plus <block>.psa.*; no wrapper prefix
    base_keys, psa_keys = list(base.state_dict()), list(psa.state_dict())
    assert [k for k in psa_keys if not is_psa_key(k)] == base_keys
    assert {k.split('.psa.')[0] + '.psa' for k in psa_keys if is_psa_key(k)} == set(blocks)
    # the baseline's state dict fits by the one rule, with only the PSA keys missing
    report = compare_state_dict(psa, base.state_dict())
    assert fit_problem(report, psa, allow_missing_psa=True) == ''
    assert sorted(report.missing_psa) == sorted(k for k in psa_keys if is_psa_key(k))
    assert report.missing == [] and report.unexpected == []
    psa.load_state_dict(base.state_dict(), strict=False)
    x = _input(name)
    with torch.no_grad():
        ours, theirs = _flat(psa(x)), _flat(base(x))
    assert [o.shape for o in ours] == [t.shape for t in theirs]
    assert not all(torch.equal(o, t) for o, t in zip(ours, theirs))


@pytest.mark.parametrize('name', sorted(SUPPORTED))
def test_psa_cfg_none_is_the_baseline_exactly(name):
    cfg = SUPPORTED[name][0]
    torch.manual_seed(0)
    base = MODELS.build(copy.deepcopy(cfg))
    torch.manual_seed(0)
    same = MODELS.build(dict(type='WithPSA', backbone=cfg, psa_cfg=None))
    base.eval(), same.eval()
    assert type(same) is type(base)
    base_sd, same_sd = base.state_dict(), same.state_dict()
    assert list(base_sd) == list(same_sd)
    assert all(torch.equal(base_sd[k], same_sd[k]) for k in base_sd)
    x = _input(name)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(_flat(same(x)), _flat(base(x))))


@pytest.mark.parametrize('name', sorted(FREEZES))
def test_frozen_stages_freeze_their_psa(name):
    _, psa = _pair(name, frozen_stages=1)
    psa.train()
    prefix = FREEZES[name]
    frozen = [n for n, p in psa.named_parameters() if not p.requires_grad]
    assert any(n.startswith(prefix) and is_psa_key(n) for n in frozen)
    stage1_psa = [m for n, m in psa.named_modules()
                  if n.startswith(prefix) and isinstance(m, PolarizedSelfAttention)]
    assert stage1_psa and not any(m.training for m in stage1_psa)
    trained = [n for n, p in psa.named_parameters() if p.requires_grad and is_psa_key(n)]
    assert trained and not any(n.startswith(prefix) for n in trained)


@pytest.mark.parametrize('name', WITH_CP)
def test_with_cp_gives_the_same_outputs_and_grads(name):
    results = []
    for with_cp in (False, True):
        _, psa = _pair(name, with_cp=with_cp)
        psa.train()
        torch.manual_seed(1)
        x = _input(name, batch=2).requires_grad_()
        out = _flat(psa(x))
        sum(o.square().sum() for o in out).backward()
        results.append([o.detach() for o in out] + [p.grad for p in psa.parameters()] +
                       [x.grad])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_norm_eval_and_inplace_inference_keep_working():
    _, psa = _pair('CSPNeXt', norm_eval=True)
    psa.train()
    assert all(not m.training for m in psa.modules() if isinstance(m, torch.nn.BatchNorm2d))
    psa.eval()
    x = _input('CSPNeXt')
    with torch.no_grad():
        inplace = _flat(psa(x))
    with torch.enable_grad():                # the PSA blocks compute out of place
        out_of_place = _flat(psa(x))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(inplace, out_of_place))


def test_psa_hrnet_and_psa_resnet_are_with_psa_of_mmpose_classes():
    """The registered PSA classes and WithPSA are one mechanism: same class, keys, outputs."""
    for cls, cfg in ((PSAHRNet, dict(extra=HRNET_TINY)), (PSAResNet, dict(RESNET_TINY))):
        torch.manual_seed(0)
        ours = cls(**cfg, psa_cfg=PAPER_P)
        torch.manual_seed(0)
        plugged = WithPSA(backbone=dict(type=cls.__name__[3:], **cfg), psa_cfg=PAPER_P)
        ours.eval(), plugged.eval()
        assert type(plugged) is cls
        ours_sd, plugged_sd = ours.state_dict(), plugged.state_dict()
        assert list(ours_sd) == list(plugged_sd)
        assert all(torch.equal(ours_sd[k], plugged_sd[k]) for k in ours_sd)
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(_flat(ours(x)), _flat(plugged(x))))


def test_a_with_psa_backbone_pickles():
    """mmdet's CSPNeXt (RTMPose's) with PSA survives pickle (torch.save of a whole model)."""
    import pickle
    _, psa = _pair('mmdet.CSPNeXt')
    assert type(psa).__name__ == 'PSACSPNeXt_mmdet'
    clone = pickle.loads(pickle.dumps(psa))
    assert type(clone) is type(psa)
    x = _input('mmdet.CSPNeXt')
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(_flat(clone(x)), _flat(psa(x))))
        clone.stage1[1].blocks[0].psa.ch_z.weight.add_(1.0)      # the clone's hooks run its PSA
        assert not torch.equal(_flat(clone(x))[0], _flat(psa(x))[0])


def test_add_psa_to_a_built_model_and_psa_stages():
    base = MODELS.build(dict(type='CSPNeXt', **CSPNEXT_TINY))
    model = add_psa_to(base, PAPER_P, psa_stages=[False, False, True, True])
    assert model is base and type(model).__name__ == 'PSACSPNeXt'
    assert model.psa_block_names() == ['stage3.1.blocks.0.psa', 'stage4.2.blocks.0.psa']
    with pytest.raises(PSAConfigError, match='already has PSA'):
        add_psa_to(model, PAPER_P)


def test_every_registered_mmpose_backbone_is_supported_or_refused_in_one_line():
    names = sorted(n for n, cls in MODELS.module_dict.items()
                   if cls.__module__.startswith('mmpose.models.backbones.'))
    assert len(names) == 32
    supported = {n.split('.')[-1] for n in SUPPORTED}
    undecided = [n for n in names if n not in supported and n not in REFUSED]
    assert undecided == []
    assert supported & set(REFUSED) == set()
    for name in sorted(REFUSED):
        with pytest.raises(PSAConfigError) as err:          # refused before it is built
            WithPSA(backbone=dict(type=name, no_such_argument=1), psa_cfg=PAPER_P)
        assert str(err.value) == f'WithPSA does not support {name}: {REFUSED[name]}'
        assert err.value.key == 'backbone' and '\n' not in str(err.value)


@pytest.mark.parametrize('kwargs,key,message', [
    (dict(backbone='ResNet'), 'backbone',
     "WithPSA: backbone must be the config dict (with a type) of an mmpose backbone, "
     "got 'ResNet'"),
    (dict(backbone=dict(depth=50)), 'backbone', 'backbone must be the config dict (with a type)'),
    (dict(backbone=dict(type='ResNot', depth=50)), 'backbone',
     "WithPSA: backbone.type 'ResNot' is not registered"),
    (dict(backbone=dict(type='PSAResNet', depth=18)), 'backbone',
     'backbone.type PSAResNet has PSA already'),
    (dict(backbone=dict(type='HeatmapHead', in_channels=8, out_channels=17)), 'backbone',
     'WithPSA does not support HeatmapHead: it has no residual block PSA knows'),
    (dict(backbone=dict(type='ResNet', depth=18), psa_stages=[True, False]), 'psa_stages',
     'psa_stages must be 4 bools (one per stage), got [True, False]; the stages are layer1, '
     'layer2, layer3, layer4'),
    (dict(backbone=dict(type='ResNet', depth=18), psa_cfg=dict(mode='x')), 'mode',
     "mode must be 'p'"),
])
def test_bad_input_is_one_line_naming_the_key(kwargs, key, message):
    kwargs.setdefault('psa_cfg', PAPER_P)
    with pytest.raises(PSAConfigError) as err:
        WithPSA(**kwargs)
    assert err.value.key == key
    assert message in str(err.value) and '\n' not in str(err.value)


@pytest.mark.parametrize('change,line', [
    ("psa_stages=[True]", "model.backbone.psa_stages is invalid (psa_stages must be 4 bools (one "
                          "per stage), got [True]; the stages are stage1, stage2, stage3, stage4)"),
    ("backbone=dict(type='LiteHRNet', extra=dict())",
     "model.backbone.backbone is invalid (WithPSA does not support LiteHRNet: its blocks are "),
    ("backbone=dict(type='CSPNot')", "model.backbone.backbone.type 'CSPNot' is not registered in "
                                     "mmpose's model registry (did you mean 'CSPNeXt'?)"),
])
def test_bad_with_psa_config_is_one_line_naming_the_key(tmp_path, change, line):
    from psa_pose.config import build_model, load_config
    from psa_pose.utils import UserError
    path = tmp_path / 'bad.py'
    path.write_text(
        "_base_ = 'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py'\n"
        "custom_imports = dict(imports=['psa_pose'], allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='WithPSA', "
        "backbone={{_base_.model.backbone}}, psa_cfg=dict(mode='p')))\n"
        f"model['backbone'].update({change})\n")
    with pytest.raises(UserError) as err:
        build_model(load_config(str(path)))
    assert str(err.value).startswith(f'{path}: {line}')
