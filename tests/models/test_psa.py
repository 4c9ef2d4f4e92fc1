"""The PSA block against independent implementations of what it claims to be.

The references below are written from psa-spec.md (Figure 2, and the list of what the released
code does differently) with explicit weight matrices and einsum, in float64; they share no
code with psa_pose.models.psa.
"""
import pytest
import torch
import torch.nn.functional as F

from psa_pose.models import PolarizedSelfAttention


def _w(conv):
    """A 1x1 conv's weight as an (out, in) float64 matrix."""
    return conv.weight.detach().double()[:, :, 0, 0]


def figure2_reference(block, x):
    """Figure 2 as drawn (formulation='paper'), computed directly."""
    n, c, h, w = x.shape
    ln_w = block.ch_norm.weight.detach().double().reshape(c)
    ln_b = block.ch_norm.bias.detach().double().reshape(c)

    def channel_gate(X):                                                   # N, C, HW
        V = torch.einsum('oc,ncp->nop', _w(block.ch_v), X)                 # C/2 x HW
        Q = torch.einsum('oc,ncp->nop', _w(block.ch_q), X).softmax(-1)     # 1 x HW
        z = torch.einsum('nop,np->no', V, Q[:, 0])                         # C/2
        z = torch.einsum('oc,nc->no', _w(block.ch_z), z)                   # C
        z = F.layer_norm(z, (c, ), ln_w, ln_b, eps=block.ch_norm.eps)
        return torch.sigmoid(z)[:, :, None]                                # N, C, 1

    def spatial_gate(X):
        Q = torch.einsum('oc,ncp->nop', _w(block.sp_q), X).mean(-1).softmax(-1)  # C/2
        V = torch.einsum('oc,ncp->nop', _w(block.sp_v), X)                 # C/2 x HW
        return torch.sigmoid(torch.einsum('no,nop->np', Q, V))[:, None]    # N, 1, HW

    X = x.double().reshape(n, c, h * w)
    if block.mode == 'p':
        out = channel_gate(X) * X + spatial_gate(X) * X
    else:
        Z = channel_gate(X) * X
        out = spatial_gate(Z) * Z
    return out.reshape(n, c, h, w)


def released_reference(block, x):
    """The released PSA_p / PSA_s (formulation='official'), computed directly."""
    n, c, h, w = x.shape

    def channel_gate(X):
        V = torch.einsum('oc,ncp->nop', _w(block.ch_v), X)
        Q = torch.einsum('oc,ncp->nop', _w(block.ch_q), X).softmax(-1)
        z = torch.einsum('nop,np->no', V, Q[:, 0])
        if block.mode == 'p':                       # one bias-free conv, no LayerNorm
            z = torch.einsum('oc,nc->no', _w(block.ch_z), z)
        else:                                       # conv(bias) -> LN -> ReLU -> conv(bias)
            down, ln, _, up = block.ch_z
            z = torch.einsum('oc,nc->no', _w(down), z) + down.bias.detach().double()
            z = F.layer_norm(z, (z.shape[1], ), ln.weight.detach().double().flatten(),
                             ln.bias.detach().double().flatten(), eps=ln.eps).relu()
            z = torch.einsum('oc,nc->no', _w(up), z) + up.bias.detach().double()
        return torch.sigmoid(z)[:, :, None]

    def spatial_gate(X):
        Q = torch.einsum('oc,ncp->nop', _w(block.sp_q), X).mean(-1)        # not normalised
        V = torch.einsum('oc,ncp->nop', _w(block.sp_v), X)
        if block.mode == 'p':                       # softmax over HW after the product
            logits = torch.einsum('no,nop->np', Q, V).softmax(-1)
        else:                                       # softmax of V over HW, per channel
            logits = torch.einsum('no,nop->np', Q, V.softmax(-1))
        return torch.sigmoid(logits)[:, None]

    X = x.double().reshape(n, c, h * w)
    if block.mode == 'p':
        out = channel_gate(X) * X + spatial_gate(X) * X
    else:
        Z = channel_gate(X) * X
        out = spatial_gate(Z) * Z
    return out.reshape(n, c, h, w)


def _randomise(block):
    """Move the LayerNorm affine off 1/0 so that the test sees them."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.3)
    return block


ALL = [(m, f) for f in ('paper', 'official') for m in ('p', 's')]


@pytest.mark.parametrize('mode', ['p', 's'])
@pytest.mark.parametrize('shape', [(2, 32, 16, 12), (1, 64, 7, 5), (3, 8, 1, 1)])
def test_paper_equals_figure2(mode, shape):
    torch.manual_seed(0)
    block = _randomise(PolarizedSelfAttention(shape[1], mode=mode, formulation='paper')).eval()
    x = torch.randn(shape)
    torch.testing.assert_close(block(x).double(), figure2_reference(block, x),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mode', ['p', 's'])
@pytest.mark.parametrize('shape', [(2, 32, 16, 12), (1, 64, 7, 5)])
def test_official_equals_released(mode, shape):
    torch.manual_seed(0)
    block = _randomise(PolarizedSelfAttention(shape[1], mode=mode, formulation='official'))
    x = torch.randn(shape)
    torch.testing.assert_close(block(x).double(), released_reference(block, x),
                               rtol=1e-5, atol=1e-5)


def test_formulations_differ():
    """Same weights where they share them, different functions: the test above can fail."""
    torch.manual_seed(0)
    paper = PolarizedSelfAttention(32, 'p', 'paper')
    official = PolarizedSelfAttention(32, 'p', 'official')
    official.load_state_dict({k: v for k, v in paper.state_dict().items() if 'norm' not in k})
    x = torch.randn(2, 32, 8, 8)
    assert (paper(x) - official(x)).abs().max() > 1e-2


def test_official_p_spatial_gate_is_nearly_constant():
    """Released PSA_p: sigmoid of a softmax over HW, so the gate lies in (0.5, 0.7311)."""
    torch.manual_seed(0)
    block = PolarizedSelfAttention(64, 'p', 'official')
    gate = block.spatial_gate(torch.randn(4, 64, 32, 24) * 3)
    assert gate.shape == (4, 1, 32, 24)
    assert gate.min() >= 0.5 and gate.max() < 1 / (1 + torch.exp(torch.tensor(-1.0)))
    assert (gate - 0.5).abs().median() < 1e-3        # close to 0.5 almost everywhere
    paper_gate = PolarizedSelfAttention(64, 'p', 'paper').spatial_gate(torch.randn(4, 64, 32, 24))
    assert paper_gate.min() < 0.4 or paper_gate.max() > 0.6


@pytest.mark.parametrize('mode,formulation', ALL)
def test_shapes_and_gradients(mode, formulation):
    torch.manual_seed(0)
    block = PolarizedSelfAttention(16, mode, formulation)
    x = torch.randn(3, 16, 9, 7, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_parameter_counts_match_spec():
    """psa-spec.md's counting convention, per block, for every width the backbones use."""
    for c in (32, 48, 64, 96, 128, 192, 256, 384, 512):
        h, r = c // 2, c // 2 // 4

        def count(mode, formulation):
            block = PolarizedSelfAttention(c, mode, formulation)
            return sum(p.numel() for p in block.parameters())

        paper = 4 * (c * h) + c + 2 * c
        assert count('p', 'paper') == count('s', 'paper') == paper
        assert count('p', 'official') == 4 * (c * h) + c
        assert count('s', 'official') == c + 3 * c * h + h * r + r + 2 * r + r * c + c


def test_init_is_kaiming_fan_in():
    torch.manual_seed(0)
    block = PolarizedSelfAttention(512, 'p', 'paper')
    with torch.no_grad():
        for p in block.parameters():
            p.fill_(0.001)
    block.init_weights()
    for conv in (block.ch_q, block.ch_v, block.sp_q, block.sp_v):
        std = conv.weight.std().item()
        assert abs(std - (2 / 512) ** 0.5) / (2 / 512) ** 0.5 < 0.1
    assert torch.equal(block.ch_norm.weight, torch.ones_like(block.ch_norm.weight))
    assert block.ch_z.weight.abs().max() <= 1 / 256 ** 0.5      # PyTorch's default bound


@pytest.mark.parametrize('kwargs,message', [
    (dict(in_channels=15), 'in_channels must be a positive even int, got 15'),
    (dict(in_channels=0), 'got 0'),
    (dict(in_channels=-4), 'got -4'),
    (dict(in_channels=8.0), 'got 8.0'),
    (dict(in_channels=8, mode='x'), "mode must be 'p' (parallel) or 's' (sequential), got 'x'"),
    (dict(in_channels=8, formulation='released'),
     "formulation must be 'paper' or 'official', got 'released'"),
    (dict(in_channels=6, mode='s', formulation='official'), 'in_channels must be >= 8, got 6'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        PolarizedSelfAttention(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize('mode,formulation', ALL)
def test_channels_last(mode, formulation):
    torch.manual_seed(0)
    block = PolarizedSelfAttention(32, mode, formulation)
    x = torch.randn(2, 32, 12, 10)
    ref = block(x)
    out = block(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('mode,formulation', ALL)
def test_autocast(mode, formulation, dtype):
    """Low-precision autocast: in a network PSA's input comes low-precision from conv -> norm ->
    ReLU; the output keeps that dtype, is finite even for large activations, and is close to
    float32 (the softmaxes, LayerNorm and gate MLP run in float32)."""
    torch.manual_seed(0)
    block = PolarizedSelfAttention(64, mode, formulation)
    x = torch.randn(2, 64, 16, 12).relu().to(dtype)
    huge = x * 300                                        # fp16 overflows at 65504
    ref = block(x.float())
    with torch.autocast('cpu', dtype=dtype):
        out = block(x)
        out_huge = block(huge)
        out_fp32_input = block(x.float())
    assert out.dtype == out_huge.dtype == dtype
    assert torch.isfinite(out_huge).all()
    assert out_fp32_input.dtype == torch.float32
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 2e-2
