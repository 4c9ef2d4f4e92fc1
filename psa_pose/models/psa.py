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

Numerics: the softmaxes, the LayerNorms and the gate MLP run in float32 even under fp16/bf16
autocast (they act on N x C or N x HW tensors, so this costs nothing and cannot overflow); the
full-resolution products run in the input's dtype and memory format.
"""
import torch
import torch.nn as nn

MODES = ('p', 's')
FORMULATIONS = ('paper', 'official')

# official PSA_s squeezes its channel-gate MLP by 4 on C/2 (C/2 -> C/8 -> C).
OFFICIAL_S_RATIO = 4


def _check_args(in_channels, mode, formulation) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels <= 0 \
            or in_channels % 2:
        raise ValueError(f'PolarizedSelfAttention: in_channels must be a positive even int, '
                         f'got {in_channels!r}')
    if mode not in MODES:
        raise ValueError(f"PolarizedSelfAttention: mode must be 'p' (parallel) or 's' "
                         f'(sequential), got {mode!r}')
    if formulation not in FORMULATIONS:
        raise ValueError(f"PolarizedSelfAttention: formulation must be 'paper' or 'official', "
                         f'got {formulation!r}')
    if formulation == 'official' and mode == 's' and in_channels // 2 // OFFICIAL_S_RATIO < 1:
        raise ValueError(f'PolarizedSelfAttention: the official PSA_s squeezes C/2 by '
                         f'{OFFICIAL_S_RATIO}, so in_channels must be >= 8, got {in_channels}')


class PolarizedSelfAttention(nn.Module):
    """Polarized Self-Attention block (Liu et al., 2021, Figure 2).

    Args:
        in_channels: channels C of the input (and output); positive and even.
        mode: ``'p'`` parallel (``A_ch*X + A_sp*X``) or ``'s'`` sequential (``A_sp(Z)*Z``,
            ``Z = A_ch*X``).
        formulation: ``'paper'`` (Figure 2) or ``'official'`` (the authors' released code).

    Shapes: ``(N, C, H, W) -> (N, C, H, W)`` for any N, H, W.

    Init (:meth:`init_weights`): the q/v projections Kaiming-normal (fan_in, ReLU gain) and the
    ``W_z`` convs PyTorch's default conv init, exactly as the released code does; LayerNorms
    weight 1, bias 0. Both formulations use it, so that they differ only in their math. Backbones
    that re-initialise every conv (mmpose's HRNet: normal, std 0.001) call it again afterwards.
    """

    def __init__(self, in_channels: int, mode: str = 'p', formulation: str = 'paper') -> None:
        super().__init__()
        _check_args(in_channels, mode, formulation)
        self.in_channels = in_channels
        self.mode = mode
        self.formulation = formulation
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
        return f'{self.in_channels}, mode={self.mode!r}, formulation={self.formulation!r}'

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

    # -- block ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == 'p':
            a_ch = self.channel_gate(x).to(x.dtype)
            a_sp = self.spatial_gate(x).to(x.dtype)
            return x * a_ch + x * a_sp
        z = x * self.channel_gate(x).to(x.dtype)
        return z * self.spatial_gate(z).to(x.dtype)

