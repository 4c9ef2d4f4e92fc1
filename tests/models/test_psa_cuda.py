"""The PSA block and a PSA model on a CUDA GPU (``-m cuda``; scripts/gpu_check.sh runs these).

Skipped, with the reason, where torch sees no GPU; never skipped where it does. Every global
flag a test changes is restored after it, and ``_flags_unchanged`` checks that none leaks.
"""
import contextlib

import pytest
import torch

from tests.models.lowp import ALL, FORMATS, W48_384, check_stage_shape, fast_and_direct

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason='needs a CUDA GPU (torch.cuda.is_available() is False)')]

def _global_flags() -> dict:
    """The process-wide settings a numerics test might touch."""
    matmul = torch.backends.cuda.matmul
    return dict(
        cudnn_tf32=torch.backends.cudnn.allow_tf32, matmul_tf32=matmul.allow_tf32,
        matmul_precision=torch.get_float32_matmul_precision(),
        fp16_reduced=matmul.allow_fp16_reduced_precision_reduction,
        bf16_reduced=matmul.allow_bf16_reduced_precision_reduction,
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        cudnn_deterministic=torch.backends.cudnn.deterministic,
        deterministic=torch.are_deterministic_algorithms_enabled(),
        default_dtype=torch.get_default_dtype(), grad=torch.is_grad_enabled(),
        autocast=torch.is_autocast_enabled('cuda'))


@pytest.fixture(autouse=True)
def _flags_unchanged():
    """Fails the test that leaves a global flag changed (as the TF32 switch here once did)."""
    before = _global_flags()
    yield
    assert _global_flags() == before


@contextlib.contextmanager
def _no_tf32():
    """float32 convs and matmuls in full float32 for the block, restored afterwards: TF32
    (10 mantissa bits) would make the float32 reference less precise than float16."""
    # the legacy switches only: torch.backends.cudnn.flags() would also reset cudnn.benchmark
    # and the new fp32_precision API, and mixing the two APIs makes torch raise
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = False
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


@pytest.fixture
def no_tf32():
    with _no_tf32():
        yield


def _grads(block, x, grad):
    block.zero_grad(set_to_none=True)
    x = x.clone(memory_format=torch.preserve_format).requires_grad_()
    out = block(x)
    out.backward(grad)
    return [out.float(), x.grad.float()] + [p.grad.float() for p in block.parameters()]


def test_no_tf32_restores_the_flags():
    """The fixture's context manager puts back what it found, whatever that was."""
    before = _global_flags()
    with _no_tf32():
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
    assert _global_flags() == before


@pytest.mark.parametrize('memory_format', FORMATS)
@pytest.mark.parametrize('mode,formulation', ALL)
def test_fast_equals_direct_fp32(mode, formulation, memory_format, no_tf32):
    """Output and every gradient within 1e-5 of the tensor's scale, in float32."""
    fast, direct = fast_and_direct(64, mode, formulation, 'cuda')
    x = torch.randn(4, 64, 32, 24, device='cuda').to(memory_format=FORMATS[memory_format])
    grad = torch.randn_like(x)
    got, want = _grads(fast, x, grad), _grads(direct, x, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * max(1.0, w.abs().max().item()))
    with torch.no_grad():
        assert fast(x).is_contiguous(memory_format=FORMATS[memory_format])


@pytest.mark.parametrize('memory_format', FORMATS)
@pytest.mark.parametrize('shape', W48_384, ids=lambda s: 'x'.join(map(str, s)))
@pytest.mark.parametrize('mode,formulation', ALL)
def test_fast_as_robust_as_direct_under_autocast(mode, formulation, shape, memory_format,
                                                 no_tf32):
    """tests.models.lowp.check_stage_shape on the GPU: HRNet-W48 384x288 stage shapes, fp16
    and bf16 autocast, the fast output (and at typical sizes its input gradient) within the
    rule of the float32 direct path, as on CPU (test_psa.py runs the same check there)."""
    check_stage_shape(mode, formulation, shape, memory_format, 'cuda')


@pytest.mark.parametrize('memory_format', FORMATS)
def test_psa_hrnet_amp_training_steps(memory_format):
    """Training steps of a PSA HRNet through mmengine's AmpOptimWrapper (dynamic loss scale,
    GradScaler), as ``train.py --amp`` runs them: every loss finite; GradScaler may skip a
    step whose gradients overflowed (it halves the scale and tries again) but within 8 steps
    at least one is taken, and the parameters stay finite throughout."""
    from mmengine.optim import AmpOptimWrapper

    from tests.conftest import build_pose_model
    fmt = FORMATS[memory_format]
    torch.manual_seed(0)
    model = build_pose_model('td-hm_hrnet-w32_8xb64-210e_coco-256x192',
                             psa_cfg=dict(mode='p', formulation='paper')).cuda()
    model = model.to(memory_format=fmt).train()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                              loss_scale='dynamic')
    x = torch.randn(8, 3, 256, 192, device='cuda').to(memory_format=fmt)
    target = torch.rand(8, 17, 64, 48, device='cuda')
    weight = torch.ones(8, 17, device='cuda')
    taken = skipped = 0
    for _ in range(8):
        before = [p.detach().clone() for p in model.parameters()]
        with wrapper.optim_context(model):
            loss = model.head.loss_module(model(x, None, mode='tensor').float(), target, weight)
        assert torch.isfinite(loss), loss
        wrapper.update_params(loss)
        changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        taken, skipped = taken + changed, skipped + (not changed)
        for name, p in model.named_parameters():
            assert torch.isfinite(p).all(), name
        if taken >= 2:
            break
    assert taken >= 1, f'GradScaler skipped all {skipped} steps'
