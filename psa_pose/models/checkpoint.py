"""Loading (baseline) checkpoints into PSA models, with a report of what matched.

A baseline checkpoint (an ImageNet backbone or a full mmpose pose model) has every key of the
PSA model except the PSA blocks' own. :func:`load_checkpoint_report` loads it, requires every
non-PSA key to be present with the right shape, and says how many tensors were loaded, how many
PSA tensors kept their own init and which checkpoint keys were ignored (an ImageNet
classifier's ``fc.*``, for instance).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Set, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .psa import PolarizedSelfAttention


class CheckpointMismatchError(RuntimeError):
    """A checkpoint lacks keys of the model (beyond the PSA keys) or has other shapes."""


@dataclass
class LoadReport:
    """What :func:`compare_state_dict` found, key by key."""
    source: str
    loaded: List[str] = field(default_factory=list)
    missing_psa: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    def summary(self) -> str:
        text = f'{self.source}: loaded {len(self.loaded)} tensors'
        if self.missing_psa:
            text += (f'; {len(self.missing_psa)} PSA tensors are not in the checkpoint and keep '
                     f'their own init')
        if self.unexpected:
            text += (f'; ignored {len(self.unexpected)} checkpoint keys the model does not have '
                     f'({", ".join(self.unexpected[:3])}{", ..." if len(self.unexpected) > 3 else ""})')
        return text

    def problem(self) -> str:
        """One line naming what does not fit, or '' when every non-PSA key fits."""
        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} model keys missing from it (e.g. '
                         f'{", ".join(self.missing[:3])})')
        if self.mismatched:
            k, got, want = self.mismatched[0]
            parts.append(f'{len(self.mismatched)} keys with other shapes (e.g. {k}: checkpoint '
                         f'{list(got)}, model {list(want)})')
        return '; '.join(parts)


def psa_state_keys(model: nn.Module) -> Set[str]:
    """State-dict keys that belong to PSA blocks."""
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, PolarizedSelfAttention):
            keys.update(f'{name}.{k}' if name else k for k in module.state_dict())
    return keys


def compare_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                       source: str = 'state_dict') -> LoadReport:
    """Sort the model's keys by how they fit ``state_dict`` (only names and shapes are read,
    nothing is loaded): what :func:`load_state_dict_report` would load, and what it refuses.

    BatchNorm's ``num_batches_tracked`` counters are never required (torchvision's checkpoints
    lack them).
    """
    own = model.state_dict()
    psa_keys = psa_state_keys(model)
    report = LoadReport(source=source)
    for key, value in own.items():
        if key not in state_dict:
            if key in psa_keys:
                report.missing_psa.append(key)
            elif not key.endswith('num_batches_tracked'):
                report.missing.append(key)
        elif tuple(state_dict[key].shape) != tuple(value.shape):
            report.mismatched.append((key, tuple(state_dict[key].shape), tuple(value.shape)))
        else:
            report.loaded.append(key)
    report.unexpected = [k for k in state_dict if k not in own]
    return report


def load_state_dict_report(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                           source: str = 'state_dict', strict: bool = True) -> LoadReport:
    """Load the tensors of ``state_dict`` that fit ``model``; report the rest.

    Args:
        strict: raise :class:`CheckpointMismatchError` (before loading anything) when a non-PSA
            key of the model is missing or has another shape (see :func:`compare_state_dict`).
    """
    report = compare_state_dict(model, state_dict, source)
    if strict and report.problem():
        raise CheckpointMismatchError(f'{source} does not fit the model: {report.problem()}. '
                                      f'Check that the checkpoint is for this architecture.')
    model.load_state_dict({k: state_dict[k] for k in report.loaded}, strict=False)
    print_log(report.summary(), logger='current')
    return report


def state_dict_from(checkpoint: object, source: str,
                    prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The state dict in a loaded checkpoint, as mmengine reads it: ``checkpoint['state_dict']``
    (or the checkpoint itself), ``module.`` (DataParallel) stripped; with ``prefix`` (e.g.
    ``'backbone.'``) only the keys under it, stripped, as mmengine's ``Pretrained`` init does.
    """
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(f'{source}: holds no state dict (found '
                                      f'{type(checkpoint).__name__})')
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                  for k, v in state_dict.items()}
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise CheckpointMismatchError(f'{source}: has no keys under prefix {prefix!r}')
    return state_dict


def load_checkpoint_report(model: nn.Module, filename: str, prefix: Optional[str] = None,
                           map_location: str = 'cpu', strict: bool = True) -> LoadReport:
    """Load a checkpoint file or URL (anything mmengine reads: local path, ``torchvision://``,
    ``open-mmlab://``, http) into ``model`` with :func:`load_state_dict_report`.

    ``prefix`` (e.g. ``'backbone.'``) loads only the keys under it, stripped, as mmengine's
    ``Pretrained`` init does: a full pose model's checkpoint can initialise a backbone.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    state_dict = state_dict_from(checkpoint, filename, prefix)
    return load_state_dict_report(model, state_dict, source=filename, strict=strict)
