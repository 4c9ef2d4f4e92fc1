"""Polarized Self-Attention (Liu et al., "Polarized Self-Attention: Towards High-quality
Pixel-wise Regression", arXiv 2107.00782, Figure 2), as the figure draws it.

Channel-only branch, gate ``A_ch`` (N x C x 1 x 1)::

    A_ch(X) = sigmoid(LN(W_z(W_v(X) x softmax_HW(W_q(X)))))     W_q: C->1, W_v: C->C/2, W_z: C/2->C

Spatial-only branch, gate ``A_sp`` (N x 1 x H x W)::

    A_sp(X) = sigmoid(softmax_C/2(GAP(W_q(X))) x W_v(X))          W_q, W_v: C->C/2

Layouts (``mode``): ``'p'`` = ``A_ch(X)*X + A_sp(X)*X``, ``'s'`` = ``A_sp(Z)*Z`` with
``Z = A_ch(X)*X``; no identity shortcut. For ablations, ``'ch'`` = ``A_ch(X)*X`` and
``'sp'`` = ``A_sp(X)*X`` (one branch each; the other branch's weights do not exist).

``formulation='official'`` is what the authors' released code (``network/PSA.py``, ``PSA_p`` /
``PSA_s``) computes instead:

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

The official ablation modes take ``PSA_p``'s branches (``p`` is their sum). The released code
calls the channel gate ``spatial_pool`` and the spatial gate ``channel_pool``; names here follow
the paper (``ch_*``: channel-only branch, ``sp_*``: spatial-only branch).

This module computes the block as drawn (``impl='direct'``). The default ``impl='fast'``
computes the same function from the same parameters with the projections moved past the
poolings (:mod:`psa_pose.models.psa_fast`); the tests hold the two equal in values and
gradients. The softmaxes, LayerNorms and ``W_z`` run in float32 under fp16/bf16 autocast (they
act on N x C or N x HW tensors); the full-resolution products keep the input's dtype.
"""
import torch
import torch.nn as nn

from .psa_fast import factored_forward

MODES = ('p', 's', 'ch', 'sp')
FORMULATIONS = ('paper', 'official')
IMPLS = ('fast', 'direct')

# the released PSA_s squeezes its channel-gate MLP by 4 on C/2 (C/2 -> C/8 -> C)
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
                             f"'s' (sequential), got {mode!r}; 'ch' and 'sp' (one branch) "
                             f"are for ablations")
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


class PolarizedSelfAttention(nn.Module):
    """Polarized Self-Attention block (Liu et al., 2021, Figure 2).

    Args:
        in_channels: channels C of the input (and output); positive and even.
        mode: ``'p'`` parallel, ``'s'`` sequential, ``'ch'`` / ``'sp'`` one branch only.
        formulation: ``'paper'`` (Figure 2) or ``'official'`` (the authors' released code).
        impl: ``'fast'`` (factored, the default) or ``'direct'`` (as drawn); same function,
            same parameters, same state dict.

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
        self.in_channels, self.mode, self.formulation, self.impl = \
            in_channels, mode, formulation, impl
        c, half = in_channels, in_channels // 2
        self.ch_q = self.ch_v = self.ch_z = self.ch_norm = self.sp_q = self.sp_v = None
        if self.has_channel_branch:
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
            if formulation == 'paper':
                self.ch_norm = nn.LayerNorm([c, 1, 1])
        if self.has_spatial_branch:
            self.sp_q = nn.Conv2d(c, half, 1, bias=False)
            self.sp_v = nn.Conv2d(c, half, 1, bias=False)
        self.init_weights()

    @property
    def has_channel_branch(self) -> bool:
        return self.mode != 'sp'

    @property
    def has_spatial_branch(self) -> bool:
        return self.mode != 'ch'

    @property
    def spatial_softmax(self) -> str:
        """Where the spatial branch normalises: ``'query'`` (paper), ``'logits'`` (released
        PSA_p, over HW after the product) or ``'value'`` (released PSA_s, V over HW)."""
        if self.formulation == 'paper':
            return 'query'
        return 'value' if self.mode == 's' else 'logits'

    def init_weights(self) -> None:
        """Initialise as the released code does (see the class docstring)."""
        for conv in (self.ch_q, self.ch_v, self.sp_q, self.sp_v):
            if conv is not None:
                nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='relu')
        for part in (self.ch_z, self.ch_norm):
            for m in part.modules() if part is not None else ():
                if isinstance(m, (nn.Conv2d, nn.LayerNorm)):
                    m.reset_parameters()

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, mode={self.mode!r}, formulation={self.formulation!r}, '
                f'impl={self.impl!r}')

    # -- the two gates, as drawn -----------------------------------------------------------------
    def channel_from_context(self, context: torch.Tensor) -> torch.Tensor:
        """``W_z`` (+ LayerNorm) and sigmoid of the pooled value ``(N, C/2)`` -> ``(N, C, 1, 1)``,
        in float32."""
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
        return self.channel_from_context(context)

    def spatial_gate(self, x: torch.Tensor) -> torch.Tensor:
        """``A_sp(X)``, shape ``(N, 1, H, W)``, float32."""
        n, _, h, w = x.shape
        q = self.sp_q(x).mean((2, 3))                                    # N, C/2 (GAP)
        v = self.sp_v(x).flatten(2)                                      # N, C/2, HW
        with torch.autocast(x.device.type, enabled=False):
            q, v = q.float()[:, None], v.float()
            if self.spatial_softmax == 'query':
                logits = torch.bmm(q.softmax(-1), v)                     # N, 1, HW
            elif self.spatial_softmax == 'logits':
                logits = torch.bmm(q, v).softmax(-1)
            else:
                logits = torch.bmm(q, v.softmax(-1))
            return logits.sigmoid().view(n, 1, h, w)

    def forward_direct(self, x: torch.Tensor) -> torch.Tensor:
        """The block as drawn: every projection at full resolution."""
        def gated(gate: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return t * gate.to(t.dtype)

        if self.mode == 'p':
            return gated(self.channel_gate(x), x) + gated(self.spatial_gate(x), x)
        if self.mode == 's':
            z = gated(self.channel_gate(x), x)
            return gated(self.spatial_gate(z), z)
        if self.mode == 'ch':
            return gated(self.channel_gate(x), x)
        return gated(self.spatial_gate(x), x)

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """The block's output. ``inplace=True`` says the caller never reads ``x`` again: when
        autograd records nothing, the fast path then writes the output into ``x`` (see
        :func:`~psa_pose.models.psa_fast.factored_forward`); otherwise it is ignored."""
        if self.impl == 'direct':
            return self.forward_direct(x)
        return factored_forward(self, x, inplace=inplace)

