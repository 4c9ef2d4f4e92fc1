from .backbones import PSAHRNet, PSAResNet
from .checkpoint import (CheckpointMismatchError, LoadReport, load_checkpoint_report,
                         load_state_dict_report, psa_state_keys)
from .psa import PolarizedSelfAttention

__all__ = [
    'PolarizedSelfAttention', 'PSAHRNet', 'PSAResNet', 'CheckpointMismatchError', 'LoadReport',
    'load_checkpoint_report', 'load_state_dict_report', 'psa_state_keys'
]
