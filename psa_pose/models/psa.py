"""Polarized Self-Attention (Liu et al., "Polarized Self-Attention: Towards High-quality
Pixel-wise Regression", arXiv 2107.00782, Figure 2), in two formulations.

``formulation='paper'`` is Figure 2 as drawn. ``formulation='official'`` is what the authors'
released segmentation code (``network/PSA.py``, ``PSA_p`` / ``PSA_s``) computes. Where the two
differ (the README's "PSA block" section has the same table):

=====================  ===============================  =========================================
                       paper (Figure 2)                 official (released code)
=====================  ===============================  =========================================
channel ``W_z``        conv C/2->C, LayerNorm(C), no    p: conv C/2->C, no LayerNorm.
                       bias                             s: conv C/2->C/8 (bias), LayerNorm(C/8),
                                                        ReLU, conv C/8->C (bias)
spatial query          GAP, then softmax over C/2       GAP, not normalised
spatial softmax        on the query (over channels)     p: on Q x V, over the HW positions
                                                        s: on V, over HW, per channel
=====================  ===============================  =========================================

Both: the channel query ``W_q`` (C->1) is softmaxed over HW; every q/v projection is a bias-free
1x1 conv; the gates end in a sigmoid; ``p`` is ``A_ch(X)*X + A_sp(X)*X`` and ``s`` is
``A_sp(Z)*Z`` with ``Z = A_ch(X)*X``; there is no identity shortcut inside the block. The
released code calls the channel gate ``spatial_pool`` and the spatial gate ``channel_pool``;
names here follow the paper (``ch_*``: channel-only branch, ``sp_*``: spatial-only branch).
A consequence worth knowing: in official ``p`` the spatial gate is ``sigmoid`` of a softmax over
HW, so it lies in (0.5, 0.73) and is close to 0.5 almost everywhere.

Two implementations of the same function from the same parameters (``impl``; state dicts are
identical, so checkpoints are interchangeable):

- ``'direct'`` computes the block as drawn: every q/v projection at full resolution.
- ``'fast'`` (default) moves each linear projection past the pooling or product that follows
  it: ``GAP(W_q X) = W_q GAP(X)``, ``W_v X softmax(q) = W_v (X softmax(q))`` and
  ``q^T (W_v X) = (W_v^T q)^T X``. For ``s``, ``GAP(A_ch*X) = A_ch*GAP(X)`` and
  ``w^T (A_ch*X) = (w*A_ch)^T X``, so ``Z`` is never built and the output is ``X*A_ch*A_sp``.
  What is left at full resolution is one C->1 projection, one weighted pool, one average pool,
  one 1xC product and the output, instead of four C->C/2 (or C->1) convs. Official ``p`` factors
  the same way; official ``s`` only in its channel branch, because its spatial branch softmaxes
  ``W_v Z`` per channel over HW: that is computed as ``(W_v diag(A_ch)) X``, without ``Z``.
  When gradients are needed, :class:`_FactoredPSA` gives it a hand-fused backward; inside
  :func:`recompute_psa_outputs` (the PSA backbones train in it) the block's output is not kept
  for the next layer's backward but recomputed from the block's input.

Numerics: the softmaxes, the LayerNorms and the gate MLP run in float32 even under fp16/bf16
autocast (they act on N x C or N x HW tensors, so this costs nothing and cannot overflow); the
full-resolution products run in the input's dtype and memory format.
"""
import contextlib
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

MODES = ('p', 's')
FORMULATIONS = ('paper', 'official')
IMPLS = ('fast', 'direct')

# official PSA_s squeezes its channel-gate MLP by 4 on C/2 (C/2 -> C/8 -> C).
OFFICIAL_S_RATIO = 4


class PSAConfigError(ValueError):
    """An argument PolarizedSelfAttention (or a PSA backbone) does not accept; ``key`` names
    it (``'mode'``, ``'formulation'``, ``'impl'``, ``'in_channels'``, ``'psa_cfg'``,
    ``'psa_stages'``), so that a config check can point at the config key to fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_psa_args(in_channels: int, mode: str, formulation: str, impl: str) -> None:
    """Raise :class:`PSAConfigError` naming the first argument the block does not accept."""
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels <= 0 \
            or in_channels % 2:
        raise PSAConfigError('in_channels', f'PolarizedSelfAttention: in_channels must be a '
                             f'positive even int, got {in_channels!r}')
    if mode not in MODES:
        raise PSAConfigError('mode', f"PolarizedSelfAttention: mode must be 'p' (parallel) or "
                             f"'s' (sequential), got {mode!r}")
    if formulation not in FORMULATIONS:
        raise PSAConfigError('formulation', f"PolarizedSelfAttention: formulation must be "
                             f"'paper' or 'official', got {formulation!r}")
    if impl not in IMPLS:
        raise PSAConfigError('impl', f"PolarizedSelfAttention: impl must be 'fast' (factored) "
                             f"or 'direct', got {impl!r}")
    if formulation == 'official' and mode == 's' and in_channels // 2 // OFFICIAL_S_RATIO < 1:
        raise PSAConfigError('in_channels', f'PolarizedSelfAttention: the official PSA_s '
                             f'squeezes C/2 by {OFFICIAL_S_RATIO}, so in_channels must be >= 8, '
                             f'got {in_channels}')


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off; a no-op context when it is off already (entering torch.autocast costs
    as much as a small op, and the fast path is dispatch-bound at batch 1)."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _softmax_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Gradient of ``softmax(-1)`` at output ``out``."""
    return out * (grad - (grad * out).sum(-1, keepdim=True))


def _gated_product(x: torch.Tensor, a_ch: torch.Tensor, a_sp: torch.Tensor,
                   parallel: bool) -> torch.Tensor:
    """``X*A_ch + X*A_sp`` or ``X*A_ch*A_sp``, in place on one fresh product."""
    out = x * a_ch
    return out.addcmul_(x, a_sp) if parallel else out.mul_(a_sp)


class _OutputRecipe:
    """A fast PSA output as what it is made of (its input and two gates), for
    :func:`recompute_psa_outputs`."""

    __slots__ = ('x', 'a_ch', 'a_sp', 'parallel')

    def __init__(self, x: torch.Tensor, a_ch: torch.Tensor, a_sp: torch.Tensor,
                 parallel: bool) -> None:
        self.x, self.a_ch, self.a_sp, self.parallel = x, a_ch, a_sp, parallel

    def __call__(self) -> torch.Tensor:
        return _gated_product(self.x, self.a_ch, self.a_sp, self.parallel)


def _pack(t: torch.Tensor) -> object:
    recipe = getattr(t, '_psa_recipe', None)
    return t if recipe is None else recipe


def _unpack(saved: object) -> torch.Tensor:
    return saved() if isinstance(saved, _OutputRecipe) else saved


def recompute_psa_outputs() -> torch.autograd.graph.saved_tensors_hooks:
    """Context in which a fast PSA block's output, when a later op saves it for backward (the
    next conv does, for its weight gradient), is saved as its recipe instead and recomputed
    when the backward needs it.

    The recipe holds the block's input and its two small gates; the block and the ReLU before
    it keep that input anyway, so the PSA output itself costs no activation memory. The price
    is one element-wise product per block in backward. Outside the context (or for the
    direct implementation) the output is saved as usual.
    """
    return torch.autograd.graph.saved_tensors_hooks(_pack, _unpack)


class _Tape:
    """What the fast backward needs from the forward: the channel-gate graph (recorded on
    detached leaves, so that ``torch.autograd.grad`` can run it alone), the small factors of
    the full-resolution products, and the gates."""

    def __init__(self) -> None:
        self.pooled = self.gap = None           # leaves of the channel-gate graph, N x C
        self.gates_out: List[torch.Tensor] = []  # its outputs: A_ch and the spatial factors
        self.s = None                           # softmax of the channel query, N x 1 x HW
        self.w_x = None                         # spatial product W_v^T q (x A_ch), N x C
        self.w_v = self.v = self.q_sp = None    # official s: W_v diag(A_ch), W_v Z, its query
        self.sp_softmax = None                  # official p: softmax of the spatial logits
        self.a_sp = None                        # official s: the gate, recorded from v, q_sp
        self.out_ch = self.out_sp = None        # the gates as the output product used them


class _FactoredPSA(torch.autograd.Function):
    """The fast block with a hand-fused backward.

    Autograd on the factored forward would return one full-size gradient of X per
    full-resolution product (five of them) and add them up; here they are summed as one
    element-wise term plus one low-rank batched product, written in place. The channel-gate
    graph between the products (W_v, W_z, LayerNorm, the spatial query) is recorded in forward
    and differentiated with ``torch.autograd.grad``; the softmax/sigmoid steps around the
    products are differentiated by hand (an autograd call each would cost more than they do).
    """

    @staticmethod
    def forward(ctx, block: 'PolarizedSelfAttention', x: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        out, tape = block._factored(x, record=True)
        ctx.block, ctx.tape, ctx.params = block, tape, params
        ctx.save_for_backward(x)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple:
        x, = ctx.saved_tensors
        return (None, *ctx.block._factored_backward(x, grad, ctx.tape, ctx.params,
                                                    ctx.needs_input_grad[1]))


class PolarizedSelfAttention(nn.Module):
    """Polarized Self-Attention block (Liu et al., 2021, Figure 2).

    Args:
        in_channels: channels C of the input (and output); positive and even.
        mode: ``'p'`` parallel (``A_ch*X + A_sp*X``) or ``'s'`` sequential (``A_sp(Z)*Z``,
            ``Z = A_ch*X``).
        formulation: ``'paper'`` (Figure 2) or ``'official'`` (the authors' released code).
        impl: ``'fast'`` (factored, the default) or ``'direct'`` (as drawn); same function,
            same parameters (see the module docstring).

    Shapes: ``(N, C, H, W) -> (N, C, H, W)`` for any N, H, W.

    Init (:meth:`init_weights`): the q/v projections Kaiming-normal (fan_in, ReLU gain) and the
    ``W_z`` convs PyTorch's default conv init, exactly as the released code does; LayerNorms
    weight 1, bias 0. Both formulations use it, so that they differ only in their math. Backbones
    that re-initialise every conv (mmpose's HRNet: normal, std 0.001) call it again afterwards.
    """

    def __init__(self, in_channels: int, mode: str = 'p', formulation: str = 'paper',
                 impl: str = 'fast') -> None:
        super().__init__()
        check_psa_args(in_channels, mode, formulation, impl)
        self.in_channels = in_channels
        self.mode = mode
        self.formulation = formulation
        self.impl = impl
        c, half = in_channels, in_channels // 2

        # channel-only branch: A_ch = sigmoid(W_z(W_v X softmax_HW(W_q X)))
        self.ch_q = nn.Conv2d(c, 1, 1, bias=False)
        self.ch_v = nn.Conv2d(c, half, 1, bias=False)
        if formulation == 'official' and mode == 's':
            squeezed = half // OFFICIAL_S_RATIO
            self.ch_z = nn.Sequential(
                nn.Conv2d(half, squeezed, 1),
                nn.LayerNorm([squeezed, 1, 1]),
                nn.ReLU(inplace=True),
                nn.Conv2d(squeezed, c, 1))
        else:
            self.ch_z = nn.Conv2d(half, c, 1, bias=False)
        self.ch_norm = nn.LayerNorm([c, 1, 1]) if formulation == 'paper' else None

        # spatial-only branch: A_sp = sigmoid(GAP(W_q X) x W_v X)
        self.sp_q = nn.Conv2d(c, half, 1, bias=False)
        self.sp_v = nn.Conv2d(c, half, 1, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Initialise as the released code does (see the class docstring)."""
        for conv in (self.ch_q, self.ch_v, self.sp_q, self.sp_v):
            nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='relu')
        for m in self.ch_z.modules():
            if isinstance(m, (nn.Conv2d, nn.LayerNorm)):
                m.reset_parameters()
        if self.ch_norm is not None:
            self.ch_norm.reset_parameters()

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, mode={self.mode!r}, formulation={self.formulation!r}, '
                f'impl={self.impl!r}')

    # -- gates ---------------------------------------------------------------------------------
    def _channel_gate_from_context(self, context: torch.Tensor) -> torch.Tensor:
        """``(N, C/2)`` pooled value -> ``(N, C, 1, 1)`` float32 gate ``A_ch``."""
        with torch.autocast(context.device.type, enabled=False):
            z = self.ch_z(context.float()[..., None, None])
            if self.ch_norm is not None:
                z = self.ch_norm(z)
            return z.sigmoid()

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        """``A_ch(X)``, shape ``(N, C, 1, 1)``, float32."""
        v = self.ch_v(x).flatten(2)                                      # N, C/2, HW
        q = self.ch_q(x).flatten(2).softmax(-1, dtype=torch.float32)     # N, 1, HW
        with torch.autocast(x.device.type, enabled=False):
            context = torch.bmm(v.float(), q.transpose(1, 2))[..., 0]    # N, C/2
        return self._channel_gate_from_context(context)

    def spatial_gate(self, x: torch.Tensor) -> torch.Tensor:
        """``A_sp(X)``, shape ``(N, 1, H, W)``, float32."""
        n, _, h, w = x.shape
        q = self.sp_q(x).mean((2, 3))                                    # N, C/2 (GAP)
        v = self.sp_v(x).flatten(2)                                      # N, C/2, HW
        with torch.autocast(x.device.type, enabled=False):
            q, v = q.float(), v.float()
            if self.formulation == 'paper':
                logits = torch.bmm(q.softmax(-1)[:, None], v)            # N, 1, HW
            elif self.mode == 'p':
                logits = torch.bmm(q[:, None], v).softmax(-1)
            else:
                logits = torch.bmm(q[:, None], v.softmax(-1))
            return logits.sigmoid().view(n, 1, h, w)

    def _gate_mlp(self, context: torch.Tensor) -> torch.Tensor:
        """``W_z`` (+ norm) and sigmoid on a float32 ``(N, C/2)`` context -> ``(N, C)``.

        The same modules as :meth:`_channel_gate_from_context`, applied as matrix products:
        a 1x1 conv on a 1x1 map costs far more in dispatch than it computes.
        """
        if isinstance(self.ch_z, nn.Conv2d):
            z = F.linear(context, self.ch_z.weight.flatten(1))
        else:
            down, norm, _, up = self.ch_z
            z = F.linear(context, down.weight.flatten(1), down.bias)
            z = F.layer_norm(z, z.shape[1:], norm.weight.flatten(), norm.bias.flatten(),
                             norm.eps).relu()
            z = F.linear(z, up.weight.flatten(1), up.bias)
        if self.ch_norm is not None:
            z = F.layer_norm(z, z.shape[1:], self.ch_norm.weight.flatten(),
                             self.ch_norm.bias.flatten(), self.ch_norm.eps)
        return z.sigmoid()

    def _factored(self, x: torch.Tensor, record: bool) -> Tuple[torch.Tensor, _Tape]:
        """The factored forward (module docstring); same result as :meth:`_forward_direct`.

        With ``record`` the channel-gate graph is recorded on detached leaves for
        :meth:`_factored_backward`; the full-resolution products never are.
        """
        n, c, h, w = x.shape
        half, dtype = c // 2, x.dtype
        acc = torch.promote_types(dtype, torch.float32)     # float32 unless x is float64
        official_s = self.formulation == 'official' and self.mode == 's'
        graph = torch.enable_grad if record else contextlib.nullcontext
        # dtype casts and detaches are no-ops in the common case, but not free calls: at
        # batch 1 this path is bound by per-op overhead
        low = dtype != acc
        t = _Tape()
        if record:
            x = x.detach()
        x3 = x.flatten(2)                          # N, C, HW: a view for both memory formats
        with _no_autocast(x.device.type):
            # the only projection that must see every position: the channel query, C -> 1
            # detached also when nothing is recorded: ops may pick their kernel by
            # requires_grad, and a checkpoint's recompute must match the no_grad forward exactly
            w_q = self.ch_q.weight.detach().view(1, 1, c)
            w_q = w_q.to(dtype) if low else w_q
            t.s = torch.bmm(w_q.expand(n, 1, c), x3).softmax(-1, dtype=acc)    # N, 1, HW
            # W_v (X softmax(q)) and GAP: (N,1,HW) x (N,HW,C) is the fast bmm orientation on
            # CPU for both memory formats; one bmm against [softmax(q), 1/HW] was slower than
            # this bmm plus a mean
            pooled = torch.bmm(t.s.to(dtype) if low else t.s, x3.transpose(1, 2))[:, 0]
            gap = x3.mean(-1)                                                   # N, C
            with graph():
                t.pooled, t.gap = (pooled.to(acc), gap.to(acc)) if low else (pooled, gap)
                if record:
                    t.pooled.requires_grad_()
                    t.gap.requires_grad_()
                a_ch = self._gate_mlp(F.linear(t.pooled, self.ch_v.weight.flatten(1)))
                gap = t.gap * a_ch if self.mode == 's' else t.gap    # GAP(A_ch * X)
                q_sp = F.linear(gap, self.sp_q.weight.flatten(1))                # N, C/2
                w_v = self.sp_v.weight.view(half, c)
                if official_s:
                    w_v = w_v * a_ch[:, None]          # W_v Z = (W_v diag(A_ch)) X
                    t.gates_out = [a_ch, w_v, q_sp]
                else:
                    if self.formulation == 'paper':
                        q_sp = q_sp.softmax(-1)
                    w_x = q_sp @ w_v                   # W_v^T q: N, C
                    if self.mode == 's':
                        w_x = w_x * a_ch               # (W_v^T q)^T (A_ch * X)
                    t.gates_out = [a_ch, w_x]
            if official_s:
                # softmax over HW of each channel of W_v Z: needs W_v Z in full, but not Z
                t.w_v = w_v.detach().to(dtype)
                v = torch.bmm(t.w_v, x3)                                        # N, C/2, HW
                with graph():
                    t.v, t.q_sp = v.requires_grad_(record), q_sp.detach().requires_grad_(record)
                    t.a_sp = a_sp = torch.bmm(t.q_sp[:, None],
                                              v.softmax(-1, dtype=acc)).sigmoid()
            else:
                w_x = w_x.detach() if record else w_x
                t.w_x = w_x.to(dtype) if low else w_x
                if dtype == torch.float16:
                    # the logits can pass float16's range (official: the query is not
                    # normalised) where the direct path has them in float32: scale w_x to 1
                    scale = w_x.abs().amax(-1, keepdim=True).clamp_min(1e-12)
                    a_sp = torch.bmm((w_x / scale).to(dtype)[:, None], x3)
                    a_sp = a_sp.to(acc) * scale[:, None]
                else:
                    a_sp = torch.bmm(t.w_x[:, None], x3)                       # N, 1, HW
                    a_sp = a_sp.to(acc) if low else a_sp
                if self.formulation == 'official':
                    a_sp = t.sp_softmax = a_sp.softmax(-1)
                a_sp = a_sp.sigmoid()
        a_ch, a_sp = (a_ch.detach(), a_sp.detach()) if record else (a_ch, a_sp)
        t.out_ch = (a_ch.to(dtype) if low else a_ch).view(n, c, 1, 1)
        t.out_sp = (a_sp.to(dtype) if low else a_sp).view(n, 1, h, w)
        return _gated_product(x, t.out_ch, t.out_sp, self.mode == 'p'), t

    def _factored_backward(self, x: torch.Tensor, grad: torch.Tensor, t: _Tape,
                           params: Sequence[torch.Tensor],
                           need_x: bool) -> List[Optional[torch.Tensor]]:
        """Gradients of :meth:`_factored` for x and for ``params`` (``self.parameters()``)."""
        n, c, h, w = x.shape
        hw, dtype = h * w, x.dtype
        acc = t.s.dtype
        x3 = x.flatten(2)
        w_q = params[0]
        with _no_autocast(x.device.type):
            # output product -> the two gates, from one shared grad * X
            buf = grad * x              # the only full-size allocation of the backward
            gx = buf.flatten(2)
            if self.mode == 'p':
                g_ch, g_sp = gx.sum(-1), gx.sum(1, keepdim=True)
            else:
                g_ch = torch.bmm(t.out_sp.view(n, 1, hw), gx.transpose(1, 2))[:, 0]
                g_sp = torch.bmm(t.out_ch.view(n, 1, c), gx)
            # spatial gate -> its full-resolution product -> the small factors
            a_sp = t.out_sp.view(n, 1, hw).to(acc)
            if t.w_v is not None:
                g_v, g_qsp = torch.autograd.grad(t.a_sp, [t.v, t.q_sp], g_sp.to(acc),
                                                 retain_graph=True)
                g_wv = torch.bmm(g_v, x3.transpose(1, 2))                       # N, C/2, C
                g_gates = [g_ch.to(acc), g_wv.to(acc), g_qsp]
            else:
                g_logits = g_sp.to(acc) * a_sp * (1 - a_sp)                    # sigmoid
                if t.sp_softmax is not None:
                    g_logits = _softmax_backward(g_logits, t.sp_softmax)
                g_logits = g_logits.to(dtype)                                  # N, 1, HW
                g_wx = torch.bmm(g_logits, x3.transpose(1, 2))[:, 0]            # N, C
                g_gates = [g_ch.to(acc), g_wx.to(acc)]
            # channel gate (W_v, W_z, norms, spatial query) -> the two pools
            trainable = [p for p in params[1:] if p.requires_grad]
            # retain_graph: the outer graph may be run again (retain_graph=True); the tape
            # goes when the outer graph does
            g_pooled, g_gap, *g_params = torch.autograd.grad(
                t.gates_out, [t.pooled, t.gap] + trainable, g_gates, retain_graph=True)
            # weighted pool -> softmax -> channel query
            g_s = torch.bmm(g_pooled.to(dtype)[:, None], x3)                    # N, 1, HW
            g_q = _softmax_backward(g_s.to(acc), t.s).to(dtype)
            g_wq = None
            if w_q.requires_grad:
                g_wq = torch.bmm(g_q, x3.transpose(1, 2)).sum(0).view_as(w_q)
            g_x = None
            if need_x:
                # all five products at once: grad * gates + a rank-4 (or 3 + C/2) bmm
                g_x = torch.mul(grad, t.out_ch, out=buf)      # grad * X is no longer needed
                g_x = g_x.addcmul_(grad, t.out_sp) if self.mode == 'p' else g_x.mul_(t.out_sp)
                cols = [w_q.detach().view(1, c).to(dtype).expand(n, c), g_pooled.to(dtype),
                        g_gap.to(dtype) / hw]
                rows = [g_q, t.s.to(dtype), g_q.new_ones(n, 1, hw)]
                if t.w_x is not None:
                    cols.append(t.w_x)
                    rows.append(g_logits)
                u, v = torch.stack(cols, 2), torch.cat(rows, 1)                 # N,C,k  N,k,HW
                if t.w_v is not None:
                    u, v = torch.cat([u, t.w_v.transpose(1, 2)], 2), torch.cat([v, g_v], 1)
                g_x3 = g_x.flatten(2)
                if g_x3.stride(1) == 1:               # channels_last: write it as N, HW, C
                    g_x3.transpose(1, 2).baddbmm_(v.transpose(1, 2), u.transpose(1, 2))
                else:
                    g_x3.baddbmm_(u, v)
        by_param = dict(zip(map(id, trainable), g_params))
        return [g_x, g_wq] + [by_param.get(id(p)) for p in params[1:]]

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            params = tuple(self.parameters())
            if x.requires_grad or any(p.requires_grad for p in params):
                out = _FactoredPSA.apply(self, x, *params)
                tape = out.grad_fn.tape              # grad_fn is the Function's ctx
                out._psa_recipe = _OutputRecipe(x.detach(), tape.out_ch, tape.out_sp,
                                                self.mode == 'p')
                return out
        return self._factored(x, record=False)[0]

    def _forward_direct(self, x: torch.Tensor) -> torch.Tensor:
        """The block as drawn: every projection at full resolution."""
        if self.mode == 'p':
            a_ch = self.channel_gate(x).to(x.dtype)
            a_sp = self.spatial_gate(x).to(x.dtype)
            return x * a_ch + x * a_sp
        z = x * self.channel_gate(x).to(x.dtype)
        return z * self.spatial_gate(z).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == 'fast':
            return self._forward_fast(x)
        return self._forward_direct(x)
