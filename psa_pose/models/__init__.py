from .backbones import PSAHRNet, PSAResNet
from .checkpoint import (CheckpointMismatchError, LoadReport, check_fit, compare_state_dict,
                         fit_problem, is_psa_key, load_checkpoint_file, load_checkpoint_report,
                         load_fitting, load_state_dict_report, psa_state_keys, state_dict_from,
                         tensors_of, verify_published)
from .psa import PolarizedSelfAttention

__all__ = [
    'PolarizedSelfAttention', 'PSAHRNet', 'PSAResNet', 'CheckpointMismatchError', 'LoadReport',
    'check_fit', 'compare_state_dict', 'fit_problem', 'is_psa_key', 'load_checkpoint_file',
    'load_checkpoint_report', 'load_fitting', 'load_state_dict_report', 'psa_state_keys',
    'state_dict_from', 'tensors_of', 'verify_published'
]
