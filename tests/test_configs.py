"""Every config builds, trains a step, and differs from its mmpose baseline only in the backbone;
the model-zoo pages are generated from what the code measures."""
import copy
import os

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample

from psa_pose import zoo
from psa_pose.config import (CONFIG_DIR, build_model, config_files, family_of, load_config,
                             mmpose_config_file, parse_name)

CONFIGS = config_files()
PSA_CONFIGS = {n: p for n, p in CONFIGS.items() if parse_name(n).psa}


def test_the_promised_configs_exist():
    expected_baselines = {
        'td-hm_res50_8xb64-210e_coco-256x192', 'td-hm_res50_8xb64-210e_coco-384x288',
        'td-hm_res101_8xb64-210e_coco-256x192', 'td-hm_res101_8xb32-210e_coco-384x288',
        'td-hm_res152_8xb32-210e_coco-256x192', 'td-hm_res152_8xb32-210e_coco-384x288',
        'td-hm_hrnet-w32_8xb64-210e_coco-256x192', 'td-hm_hrnet-w32_8xb64-210e_coco-384x288',
        'td-hm_hrnet-w48_8xb32-210e_coco-256x192', 'td-hm_hrnet-w48_8xb32-210e_coco-384x288',
        'td-hm_hrnet-w32_udp-8xb64-210e_coco-256x192',
        'td-hm_hrnet-w32_udp-8xb64-210e_coco-384x288',
        'td-hm_hrnet-w48_udp-8xb32-210e_coco-256x192',
        'td-hm_hrnet-w48_udp-8xb32-210e_coco-384x288'}
    # issue 23: WithPSA twins of RTMPose (p and s) and of ResNetV1d-50 and ResNeXt-50 (p)
    with_psa = {'rtmpose-t_8xb256-420e_coco-256x192', 'rtmpose-s_8xb256-420e_coco-256x192',
                'rtmpose-m_8xb256-420e_coco-256x192'}
    only_p = {'td-hm_resnetv1d50_8xb64-210e_coco-256x192',
              'td-hm_resnext50_8xb64-210e_coco-256x192'}
    expected_baselines |= with_psa | only_p
    baselines = {n for n in CONFIGS if not parse_name(n).psa}
    assert baselines == expected_baselines
    assert {parse_name(n).baseline for n in PSA_CONFIGS} == expected_baselines
    assert sorted(n for n in CONFIGS if n.startswith('rtmpose-t')) == [
        'rtmpose-t-psa-p_8xb256-420e_coco-256x192', 'rtmpose-t-psa-s_8xb256-420e_coco-256x192',
        'rtmpose-t_8xb256-420e_coco-256x192']
    for base in expected_baselines:                  # p and s, paper formulation, for each
        for tag in ('p', ) if base in only_p else ('p', 's'):
            arch = parse_name(base).arch
            assert base.replace(f'{arch}_', f'{arch}-psa-{tag}_', 1) in CONFIGS
    official = sorted(n for n in CONFIGS if n.split('_')[1].endswith('-official'))
    assert official == [
        'td-hm_hrnet-w48-psa-s-official_udp-8xb32-210e_coco-256x192',
        'td-hm_hrnet-w48-psa-s-official_udp-8xb32-210e_coco-384x288',
        'td-hm_res50-psa-s-official_8xb64-210e_coco-256x192',
        'td-hm_res50-psa-s-official_8xb64-210e_coco-384x288']
    ablations = sorted(n for n in CONFIGS if parse_name(n).psa in ('ch', 'sp'))
    assert ablations == [
        'td-hm_hrnet-w32-psa-ch_8xb64-210e_coco-256x192',
        'td-hm_hrnet-w32-psa-sp_8xb64-210e_coco-256x192',
        'td-hm_res50-psa-ch_8xb64-210e_coco-256x192',
        'td-hm_res50-psa-sp_8xb64-210e_coco-256x192']


def test_bad_name_is_refused():
    with pytest.raises(ValueError, match="'td-hm_hrnet-w32-psa-x_8xb64' does not follow"):
        parse_name('td-hm_hrnet-w32-psa-x_8xb64')


def _strip(cfg_dict):
    """(config without custom_imports and backbone type, backbone type, psa_cfg); a WithPSA
    backbone is replaced by the backbone it wraps, its type given as 'WithPSA(<type>)'."""
    d = copy.deepcopy(cfg_dict)
    d.pop('custom_imports', None)
    backbone = d['model']['backbone']
    type_, psa_cfg = backbone.pop('type'), backbone.pop('psa_cfg', None)
    if type_ == 'WithPSA':
        inner = d['model']['backbone'] = backbone.pop('backbone')
        assert backbone == {}, f'WithPSA arguments besides backbone and psa_cfg: {backbone}'
        type_ = f'WithPSA({inner.pop("type")})'
    return d, type_, psa_cfg


@pytest.mark.parametrize('name', sorted(PSA_CONFIGS))
def test_psa_config_is_its_baseline_but_the_backbone(name):
    info = parse_name(name)
    psa_cfg = load_config(CONFIGS[name])
    base_cfg = load_config(CONFIGS[info.baseline])
    assert psa_cfg.custom_imports == dict(imports=['psa_pose'], allow_failed_imports=False)
    assert 'custom_imports' not in base_cfg
    ours, our_type, our_psa = _strip(psa_cfg.to_dict())
    theirs, their_type, _ = _strip(base_cfg.to_dict())
    # PSAHRNet/PSAResNet for the paper's families, WithPSA around the rest
    assert our_type == (f'WithPSA({their_type})' if family_of(CONFIGS[name]) in
                        ('rtmpose', 'resnet-variants') else 'PSA' + their_type)
    mode, _, official = info.psa.partition('-')
    assert our_psa == dict(mode=mode, formulation='official' if official else 'paper')
    differing = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    assert differing == [], f'{name} differs from {info.baseline} in {differing}'


def _simcc_batch(codec_cfg, n=2):
    """A batch of random images with the SimCC labels of random keypoints, at the codec's
    input size (RTMPose's head is built for it)."""
    from mmpose.registry import KEYPOINT_CODECS
    codec = KEYPOINT_CODECS.build(codec_cfg)
    w, h = codec_cfg['input_size']
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(n):
        keypoints = rng.uniform((0, 0), (w, h), size=(1, 17, 2)).astype(np.float32)
        labels = codec.encode(keypoints, np.ones((1, 17), dtype=np.float32))
        s = PoseDataSample(metainfo=dict(input_size=(w, h), flip_indices=list(range(17))))
        s.gt_instance_labels = InstanceData(**{
            k: torch.from_numpy(labels[k]).float()
            for k in ('keypoint_x_labels', 'keypoint_y_labels', 'keypoint_weights')})
        samples.append(s)
    return torch.rand(n, 3, h, w), samples


def _loss_batch(cfg, n=2, input_size=None):
    """A random batch for ``cfg``'s model at its codec's input size, or at ``input_size``
    (W, H) with the heatmaps scaled as the codec scales them (SimCC: always the codec's)."""
    codec = cfg.codec[0] if isinstance(cfg.codec, (list, tuple)) else cfg.codec
    if codec['type'] == 'SimCCLabel':
        return _simcc_batch(codec, n)
    w, h = codec['input_size']
    hw, hh = codec['heatmap_size']
    if input_size is not None:
        (hw, hh), (w, h) = (hw * input_size[0] // w, hh * input_size[1] // h), input_size
    samples = []
    for _ in range(n):
        s = PoseDataSample(metainfo=dict(input_size=(w, h), flip_indices=list(range(17))))
        s.gt_fields = PixelData(heatmaps=torch.rand(17, hh, hw))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 17))
        samples.append(s)
    return torch.rand(n, 3, h, w), samples


# The default tier builds a ResNet baseline and a released-PSA_s twin (the PSA HRNets are built
# by tests/models/backbones); the slow tier all of them.
# Each computes its loss at 64x64 (all backbones' strides, up to 32, divide it): the layers
# and their weights are the config's, at a fraction of the cost of 256x192 or 384x288.
DEFAULT_TIER = {'td-hm_res50_8xb64-210e_coco-256x192',
                'td-hm_res50-psa-s-official_8xb64-210e_coco-256x192'}
RTMPOSE_PSA = 'rtmpose-t-psa-p_8xb256-420e_coco-256x192'


@pytest.mark.parametrize('name', [n if n in DEFAULT_TIER else
                                  pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(CONFIGS)])
def test_config_builds_and_computes_a_loss(name):
    cfg = load_config(CONFIGS[name])
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    inputs, samples = _loss_batch(cfg, input_size=(64, 64))
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_kpt', 'acc_pose'}
    assert torch.isfinite(losses['loss_kpt']) and losses['loss_kpt'] > 0
    losses['loss_kpt'].backward()
    if parse_name(name).psa:
        psa = next(model.backbone.psa_blocks())
        # every parameter of the block's branches (one branch in the ablation modes) learns
        no_grad = [n for n, p in psa.named_parameters() if p.grad is None]
        assert no_grad == [] and len(list(psa.parameters())) > 0


def test_rtmpose_psa_config_takes_an_optimizer_step_on_cpu():
    """RTMPose-t + PSA (mmdet's CSPNeXt in WithPSA, SimCC head, SyncBN, AdamW with its
    paramwise settings): a loss on generated SimCC targets at 256x192 and one step of the
    config's own optimizer wrapper, which moves the PSA weights."""
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(CONFIGS[RTMPOSE_PSA])
    torch.manual_seed(0)
    model = build_model(cfg)
    assert len(model.backbone.psa_block_names()) == 4         # CSPNeXt-t: 1 block per stage
    assert type(model.backbone).__mro__[2].__module__ == 'mmdet.models.backbones.cspnext'
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    psa = model.backbone.stage4[2].blocks[0].psa
    before = [p.detach().clone() for p in psa.parameters()]
    losses = model.loss(*_loss_batch(cfg))
    assert set(losses) == {'loss_kpt', 'acc_pose'}
    assert torch.isfinite(losses['loss_kpt']) and losses['loss_kpt'] > 0
    wrapper.update_params(losses['loss_kpt'])
    assert all(not torch.equal(a, p) for a, p in zip(before, psa.parameters()))


def test_model_zoo_pages_are_generated_from_the_results():
    results = zoo.read_results()
    assert sorted(results) == sorted(CONFIGS)
    assert zoo.stale_pages(results) == [], 'run: python scripts/update_model_zoo.py --render'


@pytest.mark.slow
def test_model_zoo_numbers_are_what_the_code_measures():
    """Re-measures params and GFLOPs of every config (each distinct model and input once)."""
    results = zoo.read_results()
    measured = zoo.measure_all(progress=False)
    stale = {n: (results[n]['params'], results[n]['gflops'], m['params'], m['gflops'])
             for n, m in measured.items()
             if (results[n]['params'], results[n]['gflops']) != (m['params'], m['gflops'])}
    assert stale == {}, 'run: python scripts/update_model_zoo.py'


# --- the quickstart's configs on generated data (configs/synth/) ---------------------------

SYNTH_DIR = os.path.join(CONFIG_DIR, 'synth')
SYNTH = {f[:-3]: os.path.join(SYNTH_DIR, f) for f in sorted(os.listdir(SYNTH_DIR))
         if f.endswith('.py')}
# what each synth baseline may change in the mmpose config it comes from: sizes, schedule, data
SYNTH_CHANGES = {
    'auto_scale_lr.base_batch_size', 'codec.heatmap_size', 'codec.input_size', 'data_root',
    'default_hooks.checkpoint.interval', 'default_hooks.checkpoint.max_keep_ckpts',
    'default_hooks.logger.interval', 'max_epochs', 'train_cfg.val_interval',
    'model.head.decoder.heatmap_size',
    'model.head.decoder.input_size', 'model.head.in_channels', 'optim_wrapper.optimizer.lr',
    'param_scheduler', 'randomness.seed', 'train_cfg.max_epochs', 'train_dataloader.batch_size',
    'train_dataloader.num_workers', 'train_dataloader.dataset.data_root',
    'train_dataloader.dataset.pipeline', 'train_pipeline', 'val_pipeline',
    *(f'{split}_dataloader.{key}' for split in ('val', 'test') for key in
      ('num_workers', 'dataset.data_root', 'dataset.bbox_file', 'dataset.pipeline')),
    'val_evaluator.ann_file', 'test_evaluator.ann_file'}


def _flat(value, prefix=''):
    """Dotted keys -> values, without the `_scope_` marks mmpose:: inheritance adds."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k != '_scope_':
                out.update(_flat(v, f'{prefix}{k}.'))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix[:-1]: repr([_flat(v) if isinstance(v, dict) else v for v in value])}
    return {prefix[:-1]: value}


@pytest.mark.parametrize('name,mmpose_base,arch_changes', [
    ('td-hm_res18_dark-1xb16-24e_synth-128x96', 'td-hm_res50_dark-8xb64-210e_coco-256x192',
     {'model.backbone.depth', 'model.head.deconv_out_channels'}),
    ('td-hm_hrnet-w16_dark-1xb16-24e_synth-128x96',
     'td-hm_hrnet-w32_dark-8xb64-210e_coco-256x192',
     {f'model.backbone.extra.stage{s}.{k}' for s in (2, 3, 4)
      for k in ('num_blocks', 'num_channels')} | {'model.backbone.extra.stage1.num_blocks',
                                                  'model.backbone.extra.stage3.num_modules',
                                                  'model.backbone.extra.stage4.num_modules'}),
])
def test_synth_config_changes_only_sizes_schedule_and_data(name, mmpose_base, arch_changes):
    ours = _flat(load_config(SYNTH[name]).to_dict())
    theirs = _flat(load_config(mmpose_config_file(mmpose_base)).to_dict())
    differing = {k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)}
    # trained from scratch: init_cfg None in ours, so its sub-keys exist only in theirs
    assert ours['model.backbone.init_cfg'] is None
    differing = {k for k in differing if not k.startswith('model.backbone.init_cfg')}
    assert differing == SYNTH_CHANGES | arch_changes


@pytest.mark.parametrize('name,params', [
    ('td-hm_res18_dark-1xb16-24e_synth-128x96', 12_752_337),
    ('td-hm_res18-psa-p_dark-1xb16-24e_synth-128x96', 14_150_737),
    ('td-hm_hrnet-w16_dark-1xb16-24e_synth-128x96', 1_461_473),
    ('td-hm_hrnet-w16-psa-p_dark-1xb16-24e_synth-128x96', 1_594_305),
    ('rtmpose-t_1xb16-80e_synth-128x96', 3_213_103),
    ('rtmpose-t-psa-p_1xb16-80e_synth-128x96', 3_312_103),
])
def test_synth_config_builds_and_computes_a_loss(name, params):
    info = parse_name(name)
    cfg = load_config(SYNTH[name])
    assert os.path.normpath(cfg.data_root) == os.path.normpath(
        os.path.join(SYNTH_DIR, '../../data/synth/'))
    torch.manual_seed(0)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == params
    model.train()
    losses = model.loss(*_loss_batch(cfg))
    assert torch.isfinite(losses['loss_kpt']) and losses['loss_kpt'] > 0
    if info.psa:   # the twin is its baseline with only the backbone changed
        base = _flat(load_config(SYNTH[info.baseline]).to_dict())
        ours = cfg.to_dict()
        backbone = ours['model']['backbone']
        if backbone['type'] == 'WithPSA':     # compare the backbone it wraps, with its psa_cfg
            ours['model']['backbone'] = dict(backbone.pop('backbone'), type='WithPSA',
                                             psa_cfg=backbone.pop('psa_cfg'))
        ours = _flat(ours)
        assert {k for k in set(ours) | set(base) if ours.get(k) != base.get(k)} == {
            'custom_imports.imports', 'custom_imports.allow_failed_imports',
            'model.backbone.type', 'model.backbone.psa_cfg.mode',
            'model.backbone.psa_cfg.formulation'}
