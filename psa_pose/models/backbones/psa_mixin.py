"""Inserting PSA into mmpose's residual blocks without copying them.

The paper adds one PSA "after the first 3x3 convolution in every residual block". In mmpose's
blocks that point is the input of the next conv: ``conv2`` in ``BasicBlock``
(conv1 -> norm1 -> relu -> PSA -> conv2) and ``conv3`` in ``Bottleneck``
(conv1 -> ... -> conv2 -> norm2 -> relu -> PSA -> conv3). The block gets a ``psa`` child module
(state-dict keys ``<block>.psa.*``, all other keys unchanged) and that conv a forward pre-hook
which runs it, so the baseline's ``forward`` (and ``with_cp`` checkpointing) stays mmpose's own.

The same point in mmpose's other residual blocks (:data:`PSA_SITES`; docs/plugin.md says why each
is the paper's position): ``conv3`` of ViPNAS's bottleneck, ``conv_bn3`` of RSN's block (the 1x1
that fuses its 3x3 branches) and ``conv2`` of CSPNeXt's block (conv1 3x3 -> PSA -> depthwise 5x5),
mmpose's and mmdet's. Subclasses of these blocks (ResNeXt's, SE-ResNet's, ResNeSt's, SCNet's, MSPN's
bottlenecks) inherit their parent's site.
"""
import copy
import inspect
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpose.models.backbones.resnet import BasicBlock, Bottleneck

from ..psa import PolarizedSelfAttention, PSAConfigError, check_psa_args
from ..psa_fast import recompute_psa_outputs


class PSABeforeConv:
    """Forward pre-hook on a block's conv that replaces the conv's input ``x`` by ``psa(x)``.

    In mmpose's blocks that input is the activation's output (or a concatenation made for this
    conv), which nothing but this conv reads, so
    the PSA may write its output into it when no gradient is recorded (``inplace=True``: no
    new full-size tensor per block in inference). A forward hook that keeps that ReLU's output
    sees it overwritten in inference.
    """

    def __init__(self, psa: PolarizedSelfAttention) -> None:
        self.psa = psa

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        return (self.psa(args[0], inplace=True), *args[1:])


def _psa_sites() -> List[Tuple[type, str]]:
    from mmdet.models.layers.csp_layer import CSPNeXtBlock as MMDetCSPNeXtBlock
    from mmpose.models.backbones.rsn import RSB
    from mmpose.models.backbones.vipnas_resnet import ViPNAS_Bottleneck
    from mmpose.models.utils.csp_layer import CSPNeXtBlock
    return [(Bottleneck, 'conv3'), (BasicBlock, 'conv2'), (ViPNAS_Bottleneck, 'conv3'),
            (RSB, 'conv_bn3'), (CSPNeXtBlock, 'conv2'), (MMDetCSPNeXtBlock, 'conv2')]


# (residual block class, its child whose input is the first 3x3 conv's activated output)
PSA_SITES: List[Tuple[type, str]] = _psa_sites()


def psa_insertion_point(block: nn.Module) -> Optional[Tuple[int, nn.Module]]:
    """(PSA width, module whose input the PSA transforms) for a residual block that
    :data:`PSA_SITES` knows, else None."""
    for cls, child in PSA_SITES:
        if isinstance(block, cls):
            target = getattr(block, child)
            conv = next(m for m in target.modules() if isinstance(m, nn.Conv2d))
            return conv.in_channels, target
    return None


def psa_stages_of(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """The backbone's stages for ``psa_stages``: its direct children that hold residual blocks
    PSA knows, in order (``layer1..4`` of ResNet, ``layer1, stage2..4`` of HRNet,
    ``stage1..4`` of CSPNeXt)."""
    return [(name, child) for name, child in model.named_children()
            if any(psa_insertion_point(m) is not None for m in child.modules())]


def check_psa_cfg(psa_cfg: Optional[dict]) -> None:
    """Raise :class:`PSAConfigError` for a ``psa_cfg`` that PolarizedSelfAttention would not
    accept: not a dict, an unknown key, or a bad ``mode``/``formulation``/``impl`` value. Needs
    no model, so config checks can run it before anything is built; the block's width is
    checked when the backbone builds its blocks."""
    if psa_cfg is None:
        return
    if not isinstance(psa_cfg, dict):
        raise PSAConfigError('psa_cfg', f'psa_cfg must be a dict of PolarizedSelfAttention '
                             f'arguments or None, got {type(psa_cfg).__name__}: {psa_cfg!r}')
    # 8: the smallest width every mode and formulation accepts, so only the values are judged
    try:
        args = inspect.signature(PolarizedSelfAttention).bind(8, **psa_cfg)
    except TypeError as e:
        raise PSAConfigError('psa_cfg', f'psa_cfg {psa_cfg!r}: {e}; allowed keys are mode, '
                             f'formulation and impl') from None
    args.apply_defaults()
    check_psa_args(**args.arguments)


class PSABackboneMixin:
    """Adds PSA blocks to an mmpose backbone; mix in before the backbone class.

    Subclasses call :meth:`add_psa` at the end of ``__init__``;
    :func:`psa_pose.models.backbones.plugin.add_psa_to` mixes it into a built backbone.
    """

    psa_cfg: Optional[dict]

    def add_psa(self, psa_cfg: Optional[dict], psa_stages: Optional[Sequence[bool]]) -> None:
        """Put one PSA after the first 3x3 conv of every residual block of the chosen stages.

        Args:
            psa_cfg: PolarizedSelfAttention arguments (``mode``, ``formulation``); ``None``
                leaves the backbone unmodified.
            psa_stages: one bool per stage (:func:`psa_stages_of`), ``True`` where PSA goes;
                ``None`` means all.
        """
        check_psa_cfg(psa_cfg)
        named = psa_stages_of(self)
        stages = [stage for _, stage in named]
        if psa_stages is None:
            psa_stages = (True, ) * len(stages)
        if not isinstance(psa_stages, (list, tuple)) or len(psa_stages) != len(stages) or \
                not all(isinstance(s, bool) for s in psa_stages):
            raise PSAConfigError('psa_stages', f'psa_stages must be {len(stages)} bools (one '
                                 f'per stage), got {psa_stages!r}; the stages are '
                                 f'{", ".join(n for n, _ in named)}')
        self.psa_cfg = copy.deepcopy(psa_cfg)
        self.psa_stages = tuple(psa_stages)
        if psa_cfg is None:
            return
        for stage, enabled in zip(stages, psa_stages):
            if not enabled:
                continue
            for block in list(stage.modules()):
                site = psa_insertion_point(block)
                if site is not None:
                    width, target = site
                    block.psa = PolarizedSelfAttention(width, **psa_cfg)
                    target.register_forward_pre_hook(PSABeforeConv(block.psa))
        # the baseline froze its stages before the PSA blocks existed
        if hasattr(self, '_freeze_stages'):
            self._freeze_stages()

    def forward(self, x: torch.Tensor):
        """The baseline's forward; when training with PSA, each block's output is recomputed
        for the next conv's backward instead of being kept (see
        :func:`psa_pose.models.psa.recompute_psa_outputs`)."""
        if self.psa_cfg is None or not torch.is_grad_enabled() or \
                torch.compiler.is_compiling():      # the compiler plans its own recompute
            return super().forward(x)
        with recompute_psa_outputs():
            return super().forward(x)

    def psa_blocks(self) -> Iterator[PolarizedSelfAttention]:
        """The PSA blocks, in forward order."""
        return (m for m in self.modules() if isinstance(m, PolarizedSelfAttention))

    def psa_block_names(self) -> List[str]:
        return [n for n, m in self.named_modules() if isinstance(m, PolarizedSelfAttention)]

    def init_weights(self) -> None:
        """The baseline's init, then PSA's own (the baseline's re-initialises every conv).

        With ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` the PSA blocks get
        their own init first and the checkpoint is loaded by
        :func:`psa_pose.models.checkpoint.load_checkpoint_report`, which requires every baseline
        key, tolerates missing PSA keys and logs how many tensors were loaded and missing.
        """
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            from ..checkpoint import load_checkpoint_report
            for psa in self.psa_blocks():
                psa.init_weights()
            load_checkpoint_report(self, init_cfg['checkpoint'], prefix=init_cfg.get('prefix'),
                                   map_location=init_cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        super().init_weights()
        for psa in self.psa_blocks():
            psa.init_weights()
