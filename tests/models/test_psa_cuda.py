"""The PSA block and a PSA model on a CUDA GPU (``-m cuda``; scripts/gpu_check.sh runs these).

Skipped, with the reason, where torch sees no GPU; never skipped where it does.
"""
import pytest
import torch

from psa_pose.models import PolarizedSelfAttention

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason='needs a CUDA GPU (torch.cuda.is_available() is False)')]

ALL = [(m, f) for f in ('paper', 'official') for m in ('p', 's', 'ch', 'sp')]


def _pair(c, mode, formulation, memory_format=torch.contiguous_format):
    torch.manual_seed(0)
    fast = PolarizedSelfAttention(c, mode, formulation, impl='fast').cuda()
    direct = PolarizedSelfAttention(c, mode, formulation, impl='direct').cuda()
    direct.load_state_dict(fast.state_dict())
    return fast, direct


def _run(block, x, grad):
    block.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out = block(x)
    out.backward(grad)
    return [out.float(), x.grad.float()] + [p.grad.float() for p in block.parameters()]


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('mode,formulation', ALL)
def test_fast_equals_direct_fp32(mode, formulation, channels_last):
    """Output and every gradient within 1e-5 of the tensor's scale (TF32 off: it would round
    the direct path's convs to 10 mantissa bits)."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    fast, direct = _pair(64, mode, formulation)
    x = torch.randn(4, 64, 32, 24, device='cuda')
    grad = torch.randn_like(x)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    got, want = _run(fast, x, grad), _run(direct, x, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * max(1.0, w.abs().max().item()))
    if channels_last:
        assert fast(x).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('mode,formulation', ALL)
def test_fast_under_autocast(mode, formulation, dtype):
    """Under autocast the output keeps the input's low precision and stays within 2e-2
    (relative norm) of float32: the full-resolution product is rounded to 8 (bf16) or 11 (fp16)
    bits, about 4e-3 / 5e-4 per element, and the direct path's convs run in that precision
    too; the gradients of x within 5e-2."""
    fast, direct = _pair(64, mode, formulation)
    x = torch.randn(4, 64, 32, 24, device='cuda').relu()
    grad = torch.randn_like(x)
    ref = _run(fast, x, grad)
    with torch.autocast('cuda', dtype=dtype):
        low = _run(fast, x.to(dtype), grad.to(dtype))
        out = fast(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    for name, (a, b) in zip(('out', 'x.grad'), zip(low[:2], ref[:2])):
        rel = ((a - b).norm() / b.norm()).item()
        assert rel < (2e-2 if name == 'out' else 5e-2), (name, rel)


def test_psa_hrnet_amp_training_step():
    """One training step of a PSA HRNet through mmengine's AmpOptimWrapper: finite loss and
    finite gradients for every parameter."""
    from mmengine.optim import AmpOptimWrapper
    from tests.conftest import build_pose_model
    model = build_pose_model('td-hm_hrnet-w32_8xb64-210e_coco-256x192',
                             psa_cfg=dict(mode='p', formulation='paper')).cuda()
    model.train()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                              loss_scale='dynamic')
    x = torch.randn(8, 3, 256, 192, device='cuda')
    target = torch.rand(8, 17, 64, 48, device='cuda')
    weight = torch.ones(8, 17, device='cuda')
    with wrapper.optim_context(model):
        loss = model.head.loss_module(model(x, None, mode='tensor').float(), target, weight)
    assert torch.isfinite(loss)
    wrapper.backward(loss)
    wrapper.scaler.unscale_(wrapper.optimizer)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    wrapper.step()
