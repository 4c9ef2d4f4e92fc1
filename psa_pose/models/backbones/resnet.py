from typing import Optional, Sequence

from mmpose.models.backbones import ResNet
from mmpose.registry import MODELS

from .psa_mixin import PSABackboneMixin


@MODELS.register_module()
class PSAResNet(PSABackboneMixin, ResNet):
    """mmpose's ResNet with Polarized Self-Attention in every residual block.

    One PSA of width ``planes`` after the first 3x3 conv (its norm and ReLU) of each block
    (16 blocks in ResNet-50, 50 in ResNet-152).

    Args:
        psa_cfg: PolarizedSelfAttention arguments, e.g. ``dict(mode='p', formulation='paper')``;
            ``None`` gives mmpose's ResNet unchanged.
        psa_stages: one bool per stage (``num_stages``), which get PSA (ablations).
        *args, **kwargs: mmpose's ResNet arguments.
    """

    def __init__(self, *args, psa_cfg: Optional[dict] = None,
                 psa_stages: Optional[Sequence[bool]] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_psa(psa_cfg, psa_stages)
