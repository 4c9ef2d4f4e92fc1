from typing import Optional, Sequence

from mmpose.models.backbones import HRNet
from mmpose.registry import MODELS

from .psa_mixin import PSABackboneMixin


@MODELS.register_module()
class PSAHRNet(PSABackboneMixin, HRNet):
    """mmpose's HRNet with Polarized Self-Attention in every residual block.

    One PSA of width ``planes`` after the first 3x3 conv (its norm and ReLU) of each block: the
    stage-1 bottlenecks and the basic blocks of stages 2-4 (108 blocks in HRNet-W32/W48).

    Args:
        psa_cfg: PolarizedSelfAttention arguments, e.g. ``dict(mode='p', formulation='paper')``;
            ``None`` gives mmpose's HRNet unchanged.
        psa_stages: 4 bools, which of stage 1 (``layer1``) and stages 2-4 get PSA (ablations).
        *args, **kwargs: mmpose's HRNet arguments.
    """

    def __init__(self, *args, psa_cfg: Optional[dict] = None,
                 psa_stages: Optional[Sequence[bool]] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_psa(psa_cfg, psa_stages)
