"""Fast against direct PSA in float16/bfloat16, measured against the float32 direct path on the
same rounded input: the rule the CPU tests (test_psa.py) and the CUDA tests (test_psa_cuda.py)
hold both paths to. ``python -m tests.models.lowp --seeds N [--device cuda]`` prints the worst
fraction of it per mode over the HRNet-W48 stage shapes (docs/gpu.md)."""
from typing import Dict

import torch

from psa_pose.models import PolarizedSelfAttention

ALL = [(m, f) for f in ('paper', 'official') for m in ('p', 's', 'ch', 'sp')]
LOW_DTYPES = (torch.float16, torch.bfloat16)


def tolerance(direct_error: float, dtype: torch.dtype) -> float:
    """What the fast path's relative error may be: twice the direct path's own error in the
    same precision plus 2 machine epsilons of it (9.8e-4 float16, 7.8e-3 bfloat16). Where the
    input is ill-conditioned (official s: a softmax over 6912 positions of logits in the
    thousands) both paths are far from float32 and the rule scales with them."""
    return 2 * direct_error + 2 * torch.finfo(dtype).eps


def grad_tolerance(direct_error: float, dtype: torch.dtype) -> float:
    """The same for the input gradient, with 16 epsilons: official s at C = 384 (HRNet-W48's
    last branch, 108 positions) measured 8.9e-3 in float16 against the direct path's 6.2e-4
    on CPU (the backward sums differ in order and precision; both are far below what a
    training step notices)."""
    return 2 * direct_error + 16 * torch.finfo(dtype).eps


def fast_and_direct(c: int, mode: str, formulation: str, device: str = 'cpu'):
    """A fast block and a direct copy of it, same weights."""
    torch.manual_seed(0)
    fast = PolarizedSelfAttention(c, mode, formulation, impl='fast').to(device)
    direct = PolarizedSelfAttention(c, mode, formulation, impl='direct').to(device)
    direct.load_state_dict(fast.state_dict())
    return fast, direct


def low_precision_errors(fast: torch.nn.Module, direct: torch.nn.Module, x: torch.Tensor,
                         dtype: torch.dtype, grad: bool = False) -> Dict[str, float]:
    """Each path's output (and with ``grad`` the gradient of its input, for a fixed random
    output gradient) under ``dtype`` autocast, input cast to ``dtype`` in its memory format,
    as relative (Frobenius) errors to the float32 direct path's: ``{'fast', 'direct'}`` and
    with ``grad`` also ``{'fast_grad', 'direct_grad'}``; inf where not finite."""
    gen = torch.Generator(device=x.device).manual_seed(0)
    grad_out = torch.randn(x.shape, generator=gen, device=x.device) if grad else None

    def run(block: torch.nn.Module, inp: torch.Tensor, low: bool):
        inp = inp.detach().clone(memory_format=torch.preserve_format).requires_grad_(grad)
        with torch.set_grad_enabled(grad), \
                torch.autocast(x.device.type, dtype=dtype, enabled=low):
            out = block(inp)
        if low:
            assert out.dtype == dtype, out.dtype
        if grad:
            out.backward(grad_out.to(out.dtype))
            block.zero_grad(set_to_none=True)
        return out.detach().float(), (inp.grad.float() if grad else None)

    def error(got: torch.Tensor, want: torch.Tensor) -> float:
        if not torch.isfinite(got).all():
            return float('inf')
        return ((got - want).norm() / want.norm()).item()

    # the reference sees the input both paths see: rounding the input is the producing conv's
    # doing, and at logits in the thousands it alone flips sigmoid gates (measured: paper
    # s, C = 384, float16: 3.2e-3 of output error from the input's rounding, against 2.9e-4
    # that the fast path adds to it)
    x_low = x.to(dtype)
    ref, ref_grad = run(direct, x_low.float(), False)
    errors = {}
    for name, block in (('fast', fast), ('direct', direct)):
        out, x_grad = run(block, x_low, True)
        errors[name] = error(out, ref)
        if grad:
            errors[f'{name}_grad'] = error(x_grad, ref_grad)
    return errors


# (C, H, W) of HRNet-W48's four branches at 384x288 (the stem divides by 4): 6912 positions
# at the top, the shapes the first 8-GPU run will see
W48_384 = [(48, 96, 72), (96, 48, 36), (192, 24, 18), (384, 12, 9)]
FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


def stage_shape_fractions(mode: str, formulation: str, shape, memory_format: str, device: str,
                          seed: int = 1) -> Dict[str, float]:
    """One HRNet-W48 384x288 stage shape, batch 2, float16 and bfloat16 autocast on ``device``,
    ReLU inputs (drawn with ``seed``) of maximum 3 (typical) and 3e3 (large; the direct path's
    output is finite at both): each error of the fast path as a fraction of what the rule
    allows (<= 1 passes; inf where not finite), keyed ``'<peak> <dtype> out|grad'``. At 3e3
    with a unit output gradient float16 backward overflows in both paths (docs/gpu.md:
    GradScaler's job), so the gradient is compared at the typical size only."""
    c, h, w = shape
    fast, direct = fast_and_direct(c, mode, formulation, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    base = torch.randn(2, c, h, w, generator=gen, device=device).relu()
    base = (base / base.amax()).to(memory_format=FORMATS[memory_format])
    fractions = {}
    for peak in (3.0, 3e3):
        for dtype in LOW_DTYPES:
            errors = low_precision_errors(fast, direct, base * peak, dtype, grad=peak < 10)
            where = f'{peak:g} {str(dtype)[6:]}'
            assert errors['direct'] < float('inf'), (where, errors, 'the premise: direct finite')
            fractions[f'{where} out'] = errors['fast'] / tolerance(errors['direct'], dtype)
            if peak < 10:
                fractions[f'{where} grad'] = errors['fast_grad'] / grad_tolerance(
                    errors['direct_grad'], dtype)
    return fractions


def check_stage_shape(mode: str, formulation: str, shape, memory_format: str,
                      device: str, seed: int = 1) -> None:
    """:func:`stage_shape_fractions` within the rule: every fraction at most 1."""
    fractions = stage_shape_fractions(mode, formulation, shape, memory_format, device, seed)
    assert max(fractions.values()) <= 1, fractions


def main() -> None:
    """``python -m tests.models.lowp [--device cuda] [--seeds N]``: the worst fraction of the
    tolerance per mode over the W48 stage shapes, both memory formats and N input seeds (the
    tests draw one), as a Markdown table."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seeds', type=int, default=4)
    args = parser.parse_args()
    print('| mode | formulation | worst fraction of the tolerance | where (shape, format, seed, case) |')
    print('|---|---|---|---|')
    for mode, formulation in ALL:
        worst = (-1.0, '')
        for shape in W48_384:
            for memory_format in FORMATS:
                for seed in range(args.seeds):
                    fractions = stage_shape_fractions(mode, formulation, shape, memory_format,
                                                      args.device, seed)
                    case = max(fractions, key=fractions.get)
                    worst = max(worst, (fractions[case], f"{'x'.join(map(str, shape))}, "
                                        f'{memory_format}, {seed}, {case}'))
        print(f'| {mode} | {formulation} | {worst[0]:.2f} | {worst[1]} |', flush=True)


if __name__ == '__main__':
    main()
