"""PSAHRNet and PSAResNet: where the blocks go, how many, what they cost, and that
``psa_cfg=None`` is mmpose's baseline."""
import pytest
import torch
from mmpose.models.backbones.resnet import BasicBlock, Bottleneck

from psa_pose.models import PolarizedSelfAttention, PSAHRNet, PSAResNet
from tests.conftest import build_pose_model, mmpose_config

W32 = 'td-hm_hrnet-w32_8xb64-210e_coco-256x192'
W48 = 'td-hm_hrnet-w48_8xb32-210e_coco-256x192'
R50 = 'td-hm_res50_8xb64-210e_coco-256x192'
R152 = 'td-hm_res152_8xb32-210e_coco-256x192'
PAPER_P = dict(mode='p', formulation='paper')
OFFICIAL_S = dict(mode='s', formulation='official')


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# Full top-down models (backbone + HeatmapHead, 17 keypoints): PSA blocks, exact parameter
# counts (mmpose baseline, + paper PSA_p, + released PSA_s; psa-spec.md rounds them to
# 28.54M / 31.42M / 30.97M ...), and the paper's count for the row it reports.
COUNTS = {
    W32: (108, 28_536_113, 31_416_881, 30_965_201, ('p', 31.4e6)),
    W48: (108, 63_595_745, 70_013_665, 69_008_545, ('p', 70.0e6)),
    R50: (16, 33_999_697, 36_525_969, 36_130_649, ('s', 36.1e6)),
    R152: (50, 68_635_473, 75_249_553, 74_214_233, ('p', 75.2e6)),
}


@pytest.mark.parametrize('name', list(COUNTS))
def test_parameter_counts(name):
    blocks, baseline, paper_p, official_s, (which, paper) = COUNTS[name]
    # shapes only: no memory for, and no time initialising, up to 75M parameters per model
    with torch.device('meta'):
        base_model = build_pose_model(name, backbone_type=mmpose_config(name).model.backbone.type)
        no_psa = build_pose_model(name, psa_cfg=None)
        p_model = build_pose_model(name, PAPER_P)
        s_model = build_pose_model(name, OFFICIAL_S)
    assert n_params(base_model) == baseline
    assert n_params(no_psa) == baseline
    assert len(p_model.backbone.psa_block_names()) == blocks
    assert n_params(p_model) == paper_p
    assert n_params(s_model) == official_s
    ours = paper_p if which == 'p' else official_s
    assert abs(ours - paper) / paper < 0.01, f'{name}: {ours} vs paper {paper}'


def test_hrnet_w48_udp_rows_of_table_4():
    """UDP-Pose-PSA(p) 70.1M and PSA(s) 69.1M: the UDP config changes only the codec."""
    name = 'td-hm_hrnet-w48_udp-8xb32-210e_coco-256x192'
    assert abs(n_params(build_pose_model(name, PAPER_P)) - 70.1e6) / 70.1e6 < 0.01
    assert abs(n_params(build_pose_model(name, OFFICIAL_S)) - 69.1e6) / 69.1e6 < 0.01


def _hrnet(psa_cfg=PAPER_P, **kwargs):
    cfg = mmpose_config(W32).model.backbone
    cfg.pop('init_cfg')
    cfg.pop('type')
    return PSAHRNet(**cfg, psa_cfg=psa_cfg, **kwargs)


def _resnet(psa_cfg=PAPER_P, **kwargs):
    return PSAResNet(depth=50, psa_cfg=psa_cfg, **kwargs)


@pytest.mark.parametrize('make,x', [(_hrnet, (1, 3, 64, 64)), (_resnet, (1, 3, 64, 64))])
def test_psa_input_is_first_3x3_conv_relu_output(make, x):
    """Each PSA sees relu(norm(first 3x3 conv)) and feeds the next conv; each runs once."""
    torch.manual_seed(0)
    model = make()
    model.eval()            # mmpose HRNet.train() returns None
    seen, calls = {}, {}

    def hook(block):
        norm = block.norm2 if isinstance(block, Bottleneck) else block.norm1
        nxt = block.conv3 if isinstance(block, Bottleneck) else block.conv2
        three_by_three = block.conv2 if isinstance(block, Bottleneck) else block.conv1
        assert three_by_three.kernel_size == (3, 3)
        key = id(block)
        # clone: the block's ReLU is in place
        norm.register_forward_hook(lambda m, a, out: seen.__setitem__((key, 'relu'),
                                                                      out.clone().relu()))
        # clone: in inference the PSA writes its output into its input
        block.psa.register_forward_pre_hook(lambda m, a: seen.__setitem__((key, 'in'),
                                                                          a[0].clone()))
        block.psa.register_forward_hook(lambda m, a, out: seen.__setitem__((key, 'out'), out))
        nxt.register_forward_pre_hook(lambda m, a: seen.__setitem__((key, 'next'), a[0]))
        block.psa.register_forward_hook(
            lambda m, a, out: calls.__setitem__(key, calls.get(key, 0) + 1))

    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert all(isinstance(b.psa, PolarizedSelfAttention) for b in blocks)
    for block in blocks:
        assert block.psa.in_channels == block.mid_channels
        hook(block)
    with torch.no_grad():
        model(torch.rand(x))
    assert len(calls) == len(blocks) and set(calls.values()) == {1}
    for block in blocks:
        key = id(block)
        assert torch.equal(seen[key, 'in'], seen[key, 'relu'])
        assert torch.equal(seen[key, 'next'], seen[key, 'out'])


@pytest.mark.parametrize('make', [_hrnet, _resnet])
def test_inference_in_place_gives_the_training_path_output(make):
    """In inference each PSA writes its output into its input (the ReLU's output, which only
    the next conv reads); the backbone's outputs are bit for bit those computed with autograd
    (where nothing is written in place)."""
    torch.manual_seed(0)
    model = make()
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    writes = []
    for block in model.psa_blocks():
        block.register_forward_hook(lambda m, a, out: writes.append(out.data_ptr() ==
                                                                    a[0].data_ptr()))
    with torch.no_grad():
        fast = model(x)
    assert writes == [True] * len(list(model.psa_blocks()))
    writes.clear()
    with_grad = model(x)
    assert writes == [False] * len(list(model.psa_blocks()))
    assert len(fast) == len(with_grad) and all(torch.equal(a, b) for a, b in zip(fast, with_grad))


def test_block_counts_and_widths():
    hr = _hrnet()
    widths = [m.in_channels for m in hr.psa_blocks()]
    assert len(widths) == 108
    assert widths[:4] == [64] * 4                      # stage-1 bottlenecks: planes 64
    assert sorted(set(widths)) == [32, 64, 128, 256]
    res = _resnet()
    assert [m.in_channels for m in res.psa_blocks()] == [64] * 3 + [128] * 4 + [256] * 6 + \
        [512] * 3
    assert len(PSAResNet(depth=152, psa_cfg=PAPER_P).psa_block_names()) == 50


def test_psa_stages_restricts_blocks():
    assert len(_hrnet(psa_stages=(False, True, False, False)).psa_block_names()) == 8
    assert len(_hrnet(psa_stages=(True, False, False, False)).psa_block_names()) == 4
    names = _resnet(psa_stages=(False, False, False, True)).psa_block_names()
    assert names == ['layer4.0.psa', 'layer4.1.psa', 'layer4.2.psa']


@pytest.mark.parametrize('kwargs,message', [
    (dict(psa_stages=(True, True)), 'psa_stages must be 4 bools (one per stage), got (True, True)'),
    (dict(psa_stages=(1, 1, 1, 1)), 'psa_stages must be 4 bools'),
    (dict(psa_cfg=dict(mode='q')), "mode must be 'p' (parallel) or 's' (sequential), got 'q'"),
    (dict(psa_cfg=dict(mode='p', ratio=4)),
     "psa_cfg {'mode': 'p', 'ratio': 4}: got an unexpected keyword argument 'ratio'"),
    (dict(psa_cfg='p'), "psa_cfg must be a dict of PolarizedSelfAttention arguments or None, "
                        "got str: 'p'"),
])
def test_bad_psa_arguments(kwargs, message):
    kwargs.setdefault('psa_cfg', PAPER_P)
    with pytest.raises(ValueError) as err:
        _hrnet(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize('name', [pytest.param(W32, marks=pytest.mark.slow), R50])
def test_psa_cfg_none_is_the_baseline(name):
    baseline = build_pose_model(name, backbone_type=mmpose_config(name).model.backbone.type)
    ours = build_pose_model(name, psa_cfg=None)
    base_sd, our_sd = baseline.state_dict(), ours.state_dict()
    assert list(base_sd) == list(our_sd)
    assert all(base_sd[k].shape == our_sd[k].shape for k in base_sd)
    ours.load_state_dict(base_sd)
    baseline.eval(), ours.eval()
    x = torch.rand(2, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours.extract_feat(x), baseline.extract_feat(x), rtol=0,
                                   atol=0)


def test_frozen_stages_freeze_their_psa():
    model = _hrnet(frozen_stages=1)
    model.train()
    for name, p in model.named_parameters():
        if name.startswith('layer1.'):
            assert not p.requires_grad, name
        elif name.startswith('stage2.'):
            assert p.requires_grad, name
    assert not model.layer1[0].psa.training


def test_with_cp_gives_the_same_output_and_grads():
    torch.manual_seed(0)
    plain = _resnet(psa_cfg=dict(mode='s'))
    cp = _resnet(psa_cfg=dict(mode='s'), with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    out_plain, out_cp = plain(x)[0], cp(x)[0]
    torch.testing.assert_close(out_cp, out_plain)
    out_plain.sum().backward()
    out_cp.sum().backward()
    g1 = plain.layer2[0].psa.sp_v.weight.grad
    g2 = cp.layer2[0].psa.sp_v.weight.grad
    torch.testing.assert_close(g2, g1)


def test_init_weights_gives_psa_its_own_init():
    """HRNet re-initialises every conv with normal(std=0.001); PSA keeps its own init."""
    torch.manual_seed(0)
    model = _hrnet()
    model.init_weights()
    psa = model.stage4[0].branches[3][0].psa                    # width 256
    assert model.stage4[0].branches[3][0].conv1.weight.std() < 0.002
    std = psa.sp_v.weight.std().item()
    assert abs(std - (2 / 256) ** 0.5) < 0.01


def test_deepcopy_keeps_psa_hooks_on_the_copy():
    import copy
    torch.manual_seed(0)
    model = _resnet()
    model.eval()
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.layer1[0].psa.ch_z.weight.add_(1.0)           # change the copy only
        x = torch.rand(1, 3, 64, 64)
        assert not torch.allclose(clone(x)[0], model(x)[0])


@pytest.mark.parametrize('make,mode', [(_resnet, 'p'),
                                       pytest.param(_hrnet, 's', marks=pytest.mark.slow)])
def test_training_recomputes_psa_outputs_exactly(make, mode):
    """Training forward keeps each PSA output as a recipe for the next conv's backward;
    the gradients are bit-identical to keeping the outputs."""
    from psa_pose.models.backbones.psa_mixin import PSABackboneMixin
    torch.manual_seed(0)
    model = make(psa_cfg=dict(mode=mode, formulation='paper'))
    model.train()
    x = torch.rand(2, 3, 64, 64)
    grads = []
    for forward in (model.forward, lambda x: super(PSABackboneMixin, model).forward(x)):
        model.zero_grad()
        sum(o.square().sum() for o in forward(x)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize('psa_cfg', [PAPER_P, OFFICIAL_S])
def test_with_cp_gradients_are_bit_identical(psa_cfg):
    """Every gradient, exactly: the checkpoint recomputes (with grad) what ran without."""
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = PSAResNet(depth=18, psa_cfg=psa_cfg, with_cp=with_cp)
        model.train()
        x = torch.rand(2, 3, 64, 64, requires_grad=True)
        sum(o.square().sum() for o in model(x)).backward()
        grads.append([p.grad for p in model.parameters()] + [x.grad])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
