from .backbones import PSAHRNet, PSAResNet
from .checkpoint import (CheckpointMismatchError, LoadReport, compare_state_dict,
                         load_checkpoint_report, load_state_dict_report, psa_state_keys,
                         state_dict_from)
from .psa import PolarizedSelfAttention

__all__ = [
    'PolarizedSelfAttention', 'PSAHRNet', 'PSAResNet', 'CheckpointMismatchError', 'LoadReport',
    'compare_state_dict', 'load_checkpoint_report', 'load_state_dict_report', 'psa_state_keys',
    'state_dict_from'
]
