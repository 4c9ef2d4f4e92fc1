"""The fast path of :class:`~psa_pose.models.psa.PolarizedSelfAttention` (``impl='fast'``): the
same function from the same parameters, with every linear projection moved past the pooling or
product that follows it.

- ``GAP(W_q X) = W_q GAP(X)``, ``W_v X softmax(q) = W_v (X softmax(q))`` and
  ``q^T (W_v X) = (W_v^T q)^T X``: what is left at full resolution is the C->1 channel query,
  one weighted pool, one average pool, one 1xC product and the output, instead of four C->C/2
  (or C->1) convs.
- Sequential: ``GAP(A_ch*X) = A_ch*GAP(X)`` and ``w^T (A_ch*X) = (w*A_ch)^T X``, so
  ``Z = A_ch*X`` is never built and the output is ``X*A_ch*A_sp``.
- The released PSA_s softmaxes ``W_v Z`` per channel over HW, which needs ``W_v Z`` in full; it
  is computed as ``(W_v diag(A_ch)) X``, still without ``Z``.
- ``GAP(X)`` is ``X`` pooled with uniform weights, so in float32 it comes out of the same
  ``bmm`` as the channel branch's weighted pool: three passes over ``X`` before the output, not
  four. In float16/bfloat16 it is a separate float32 sum (below: a rounded GAP feeds a softmax).
- In inference, called with ``inplace=True`` (the PSA backbones' hook does: the block's input
  is a ReLU output nothing else reads), the output is written into the input: no new
  full-size tensor per block.

Training goes through plain autograd. Inside :func:`recompute_psa_outputs` (the PSA backbones
train in it) a block's output is not kept for the next layer's backward but recomputed from the
block's input and its two small gates, which autograd keeps anyway. Under ``torch.compile`` the
same saving comes from computing the output inside ``torch.utils.checkpoint``, which
AOTAutograd's partitioner recomputes in backward instead of saving (docs/gpu.md).

Why no hand-written backward. Until this module existed the fast path had one (an
``autograd.Function`` that added the five full-size gradients of X as one element-wise term and
one low-rank ``bmm``). Measured against plain autograd through this forward with
``scripts/benchmark.py --threads 1 --clock cpu`` (process CPU time, one thread; 2-core machine
shared with other jobs), training step at batch 8 and its peak memory, ratio to mmpose's
baseline:

    ======================  =====================  =====================
    psa_fast / baseline     hand-written backward  plain autograd
                            (2 runs)               (2 runs)
    ======================  =====================  =====================
    HRNet-W32 train step    1.17, 1.12             1.17, 1.24
    HRNet-W32 peak memory   1.02, 1.02             1.02, 1.02
    ResNet-50 train step    1.06, 1.00             0.99, 1.08
    ResNet-50 peak memory   1.02, 1.02             1.02, 1.02
    ======================  =====================  =====================

(batch 8, 256x192; in the same runs the forward at batch 16, identical code in both columns,
moved by up to 0.06.) Peak memory is the same. On HRNet-W32 autograd averaged 0.06 slower,
on ResNet-50 0.005 faster: both within the spread that identical code shows, so the
hand-written backward did not win by more than the noise and was removed: the code is a third
as long, every mode (``ch``/``sp`` included) has the same path, and ONNX export and
``torch.compile`` see ordinary ops.

Numerics: the softmaxes, the LayerNorms and ``W_z`` run in float32 even under fp16/bf16
autocast (N x C or N x HW tensors: this costs nothing and cannot overflow); the full-resolution
products run in the input's dtype and memory format. The one reduction the factoring changes,
the spatial logits ``(W_v^T q)^T X`` (a sum over C that the direct path splits into C/2
rounded projections ``W_v X`` and a float32 sum), goes through :func:`low_precision_product`:
scaled so that it fits in float16 wherever ``W_v X`` does, and with the weight split in two so
that it is as precise as the direct path (tests: ``test_fast_as_robust_as_direct_in_low_
precision``; the rule and the measured errors: docs/gpu.md).
"""
import contextlib
import contextvars
from typing import TYPE_CHECKING, Iterator, Optional

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from torch.utils.weak import WeakIdKeyDictionary

if TYPE_CHECKING:
    from .psa import PolarizedSelfAttention


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off; a no-op context when it is off already (entering torch.autocast costs
    as much as a small op, and this path is bound by per-op overhead at batch 1)."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _weight(conv: torch.nn.Conv2d, differentiable: bool) -> torch.Tensor:
    """A 1x1 conv's weight as an (out, in) matrix. Detached when no gradient flows: kernels
    may be chosen by ``requires_grad``, and a checkpointed block must recompute with gradients
    exactly what it ran without."""
    w = conv.weight.flatten(1)
    return w if differentiable else w.detach()


def _channel_mlp(block: 'PolarizedSelfAttention', context: torch.Tensor) -> torch.Tensor:
    """``W_z`` (+ LayerNorm) and sigmoid on a float32 ``(N, C/2)`` context -> ``(N, C)``:
    the modules of :meth:`PolarizedSelfAttention.channel_from_context` as matrix products (a
    1x1 conv on a 1x1 map costs far more in dispatch than it computes)."""
    if isinstance(block.ch_z, torch.nn.Conv2d):
        z = F.linear(context, block.ch_z.weight.flatten(1))
    else:
        down, norm, _, up = block.ch_z
        z = F.linear(context, down.weight.flatten(1), down.bias)
        z = F.layer_norm(z, z.shape[1:], norm.weight.flatten(), norm.bias.flatten(),
                         norm.eps).relu()
        z = F.linear(z, up.weight.flatten(1), up.bias)
    if block.ch_norm is not None:
        z = F.layer_norm(z, z.shape[1:], block.ch_norm.weight.flatten(),
                         block.ch_norm.bias.flatten(), block.ch_norm.eps)
    return z.sigmoid()


def low_precision_product(w: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
    """``w^T x`` per sample, ``(N, C)`` float32 weights against ``x3`` ``(N, C, HW)`` in
    float16/bfloat16, as float32 ``(N, 1, HW)``, for a sum that feeds a sigmoid (paper: the
    spatial logits ``(W_v^T softmax(q))^T X``). It runs in ``x3``'s dtype, with no float32 copy:

    - range: the weights are a convex combination of ``W_v``'s rows (times ``A_ch <= 1``), so
      ``|w^T x| <= max_c |(W_v X)_c|``: finite wherever the direct path's projection is;
    - precision: the direct path rounds each of C/2 projections and averages the errors away;
      one rounding of the combined weight would not (14x its error in bfloat16, measured), so
      ``w`` goes as ``hi + lo``, two rows of one ``bmm`` (one pass over ``x3``): about 16
      significant bits instead of 8.
    """
    hi = w.to(x3.dtype)
    lo = (w - hi.float()).to(x3.dtype)
    both = torch.bmm(torch.stack([hi, lo], 1), x3).float()                          # N, 2, HW
    return both[:, :1] + both[:, 1:]


def float32_input(x3: torch.Tensor, grad: bool) -> torch.Tensor:
    """``x3`` in float32, for the sums over C that feed a softmax over HW (the released
    code's spatial branch): there an absolute error of a logit is the relative error of its
    weight, and a float16/bfloat16 result is rounded relative to the whole sum, where the
    direct path sums C/2 rounded projections in float32 (measured: 15x its error, official
    sp at C = 192, bfloat16). Costs a float32 copy of the input per official block; inside
    :func:`recompute_psa_outputs` autograd keeps the input instead and casts again."""
    x32 = x3.float()
    outputs = None if torch.compiler.is_compiling() else _ACTIVE.get()
    if grad and outputs is not None:
        outputs.recipes[x32] = _Float32Recipe(x3.detach())
    return x32


def gated_product(x: torch.Tensor, a_ch: Optional[torch.Tensor], a_sp: Optional[torch.Tensor],
                  mode: str) -> torch.Tensor:
    """The block's output from its input and gates (each in x's dtype, or None where the mode
    has no such branch): ``X*A_ch + X*A_sp`` (p), ``X*A_ch*A_sp`` (s), ``X*A_ch``, ``X*A_sp``."""
    if mode == 'p':
        return (x * a_ch).addcmul_(x, a_sp)
    if mode == 's':
        return (x * a_ch).mul_(a_sp)
    return x * (a_ch if mode == 'ch' else a_sp)


def gated_product_(x: torch.Tensor, a_ch: Optional[torch.Tensor], a_sp: Optional[torch.Tensor],
                   mode: str) -> torch.Tensor:
    """:func:`gated_product` written into ``x`` (no gradient may flow through it), with the
    same arithmetic, so that a checkpointed block recomputes with gradients bit for bit what
    it ran without."""
    if mode == 'p':
        # the only full-size temporary, freed at once: neither x nor the output waits on it
        return torch.addcmul(x * a_ch, x, a_sp, out=x)
    if mode == 's':
        return x.mul_(a_ch).mul_(a_sp)
    return x.mul_(a_ch if mode == 'ch' else a_sp)


class _OutputRecipe:
    """A fast block's output as what it is made of, to be recomputed for a later backward."""

    __slots__ = ('x', 'a_ch', 'a_sp', 'mode')

    def __init__(self, x: torch.Tensor, a_ch: Optional[torch.Tensor],
                 a_sp: Optional[torch.Tensor], mode: str) -> None:
        self.x, self.a_ch, self.a_sp, self.mode = x, a_ch, a_sp, mode

    def __call__(self) -> torch.Tensor:
        return gated_product(self.x, self.a_ch, self.a_sp, self.mode)


class _Float32Recipe:
    """A float32 copy of a block's input, to be cast again for a later backward."""

    __slots__ = ('x', )

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __call__(self) -> torch.Tensor:
        return self.x.float()


class _RecomputedOutputs:
    """The fast outputs made inside one :func:`recompute_psa_outputs` context, by identity;
    an entry goes when its output tensor does."""

    def __init__(self) -> None:
        self.recipes = WeakIdKeyDictionary()

    def pack(self, t: torch.Tensor) -> object:
        return self.recipes.get(t, t)

    @staticmethod
    def unpack(saved: object) -> torch.Tensor:
        return saved() if isinstance(saved, (_OutputRecipe, _Float32Recipe)) else saved


_ACTIVE: contextvars.ContextVar[Optional[_RecomputedOutputs]] = \
    contextvars.ContextVar('psa_recomputed_outputs', default=None)


@contextlib.contextmanager
def recompute_psa_outputs() -> Iterator[None]:
    """Context in which a fast PSA block's output, when a later op saves it for backward (the
    next conv does, for its weight gradient), is saved as its recipe instead and recomputed
    when the backward needs it.

    The recipe holds the block's input and its two small gates, which the block's own backward
    keeps anyway, so the output itself costs no activation memory; the price is one element-wise
    product per block in backward. Outside the context (or for ``impl='direct'``) the output is
    saved as usual.
    """
    outputs = _RecomputedOutputs()
    token = _ACTIVE.set(outputs)
    try:
        with torch.autograd.graph.saved_tensors_hooks(outputs.pack, outputs.unpack):
            yield
    finally:
        _ACTIVE.reset(token)


def factored_forward(block: 'PolarizedSelfAttention', x: torch.Tensor,
                     inplace: bool = False) -> torch.Tensor:
    """The block's output, computed factored (module docstring); differentiable.

    ``inplace=True`` (the caller never reads ``x`` again) writes the output into ``x`` when no
    gradient is recorded. On CPU that is most of what is left of PSA's inference cost: a new
    full-size output per block is a fresh buffer whose pages the kernel faults in and zeroes,
    and with one more large buffer alive per block glibc's malloc hands fresh pages to the
    convolutions around it too. With a gradient the argument is ignored (autograd needs ``x``).
    """
    n, c, h, w = x.shape
    half, dtype = c // 2, x.dtype
    acc = torch.promote_types(dtype, torch.float32)      # float32 unless x is float64
    low = dtype != acc
    grad = torch.is_grad_enabled() and (x.requires_grad or any(
        p.requires_grad for p in block.parameters()))
    mode = block.mode
    x3 = x.flatten(2)                          # N, C, HW: a view for both memory formats
    a_ch = a_sp = None
    gap = None
    with _no_autocast(x.device.type):
        if block.has_channel_branch:
            # the only projection that must see every position: the channel query, C -> 1
            w_q = _weight(block.ch_q, grad).view(1, 1, c)
            w_q = w_q.to(dtype) if low else w_q
            s = torch.bmm(w_q.expand(n, 1, c), x3).softmax(-1, dtype=acc)       # N, 1, HW
            s = s.to(dtype) if low else s
            if block.has_spatial_branch and not low:
                # GAP(X) is X pooled with uniform weights: one pass over X for both poolings
                s = torch.cat([s, s.new_full((n, 1, h * w), 1 / (h * w))], 1)   # N, 2, HW
            # W_v (X softmax(q)); (N,k,HW) x (N,HW,C) is the fast bmm orientation on CPU for
            # both memory formats
            pooled = torch.bmm(s, x3.transpose(1, 2))                           # N, 1|2, C
            pooled = pooled.to(acc) if low else pooled
            if block.has_spatial_branch and not low:
                gap = pooled[:, 1]
            a_ch = _channel_mlp(block, F.linear(pooled[:, 0], _weight(block.ch_v, grad)))
        if block.has_spatial_branch:
            if gap is None:
                # In float16/bfloat16 GAP(X) is summed and kept in float32: it feeds the
                # spatial query's softmax over C/2, whose logits reach the thousands where X
                # does, so one rounding of GAP to the input's dtype (relative 2^-11 in float16)
                # moved the softmax weights by up to 11% (paper sp, C = 96, measured; the
                # direct path's GAP of W_q X averages its roundings away over HW)
                gap = x3.sum(-1, dtype=acc) * (1 / (h * w)) if low else x3.mean(-1)
            if mode == 's':
                gap = gap * a_ch                       # GAP(A_ch * X)
            q_sp = F.linear(gap, _weight(block.sp_q, grad))                     # N, C/2
            w_v = _weight(block.sp_v, grad)                                     # C/2, C
            if block.spatial_softmax == 'value':
                # softmax over HW of each channel of W_v Z: W_v Z in full, but not Z
                x_v, w_vz = (float32_input(x3, grad), w_v * a_ch[:, None]) if low else \
                    (x3, w_v * a_ch[:, None])
                v = torch.bmm(w_vz, x_v).softmax(-1)                            # N, C/2, HW
                a_sp = torch.bmm(q_sp[:, None], v)
            else:
                if block.spatial_softmax == 'query':
                    q_sp = q_sp.softmax(-1)
                w_x = q_sp @ w_v                       # W_v^T q: N, C
                if mode == 's':
                    w_x = w_x * a_ch                   # (W_v^T q)^T (A_ch * X)
                if low and block.spatial_softmax == 'logits':
                    a_sp = torch.bmm(w_x[:, None], float32_input(x3, grad))
                elif low:
                    a_sp = low_precision_product(w_x, x3)
                else:
                    a_sp = torch.bmm(w_x[:, None], x3)                          # N, 1, HW
                if block.spatial_softmax == 'logits':
                    a_sp = a_sp.softmax(-1)
            a_sp = a_sp.sigmoid()
    if a_ch is not None:
        a_ch = (a_ch.to(dtype) if low else a_ch).view(n, c, 1, 1)
    if a_sp is not None:
        a_sp = (a_sp.to(dtype) if low else a_sp).view(n, 1, h, w)
    if inplace and not grad:
        return gated_product_(x, a_ch, a_sp, mode)
    if grad and torch.compiler.is_compiling():
        # the compiled twin of recompute_psa_outputs: a checkpointed region's outputs are
        # recomputed in backward, for the next conv too, instead of saved (AOTAutograd's
        # partitioner would otherwise keep this full-size output)
        return checkpoint(gated_product, x, a_ch, a_sp, mode, use_reentrant=False)
    out = gated_product(x, a_ch, a_sp, mode)
    outputs = None if torch.compiler.is_compiling() else _ACTIVE.get()
    if grad and outputs is not None:
        outputs.recipes[out] = _OutputRecipe(
            x.detach(), None if a_ch is None else a_ch.detach(),
            None if a_sp is None else a_sp.detach(), mode)
    return out
