"""Checkpoints: reading a file, and the one rule for whether it fits a model.

Every entry point that takes a checkpoint (``init_cfg=Pretrained`` while the model initialises,
train's ``load_from`` and ``--resume`` and the ``--check`` pre-flight, test, demo, publish,
export) decides with :func:`fit_problem` and says so with :func:`check_fit`'s line.

A PSA key is a state-dict key under a child module named ``psa`` (:func:`is_psa_key`): that is
how every PSA backbone inserts its blocks, so a baseline checkpoint (an ImageNet backbone or a
full mmpose pose model) has every key of the PSA model except those. Reading a file
(:func:`load_checkpoint_file`, :func:`tensors_of`) fails in one :class:`~psa_pose.utils.UserError`
line naming the file, what is wrong with it (missing, cut short, not a checkpoint, no tensors, a
release whose sha256 does not match its name) and what to do.
"""
import os
import os.path as osp
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from ..utils import UserError, first_line, sha256_of

PUBLISHED = re.compile(r'-(?P<sha>[0-9a-f]{8})_(?P<date>\d{8})\.pth$')


def checkpoint_globals() -> List[type]:
    """What training checkpoints hold besides tensors, for ``torch.load(weights_only=True)``:
    mmengine's own allow-list (its ``HistoryBuffer``, numpy arrays and the float64/int64
    dtypes) plus numpy's other numeric dtype classes (the message hub's logged scalars carry
    e.g. ``UInt8DType``). Data types only: nothing that runs code when unpickled."""
    import numpy as np
    from mmengine.runner.checkpoint import get_torch_safe_globals
    numeric = np.typecodes['AllInteger'] + np.typecodes['AllFloat'] + '?'
    return list(dict.fromkeys([*get_torch_safe_globals(),
                               *(type(np.dtype(code)) for code in numeric)]))


def allow_checkpoint_globals() -> None:
    """Add :func:`checkpoint_globals` to torch's safe globals (once, at import of the
    package), so that mmengine's loader (test, resume, ``load_from``) reads our checkpoints
    with ``weights_only=True`` instead of warning "Could not safely load weights" and falling
    back to full unpickling."""
    torch.serialization.add_safe_globals(checkpoint_globals())


allow_checkpoint_globals()


def load_weights_only(path: str, map_location: str = 'cpu', mmap: Optional[bool] = None) -> Any:
    """``torch.load(path, weights_only=True)`` with :func:`checkpoint_globals` allowed.

    They are added again for every load: mmengine's own loader enters torch's
    ``safe_globals(...)`` context, whose exit removes its entries from torch's global set even
    where they were there before, so after mmengine's first load in a process the allow-list
    added at import lacks ``HistoryBuffer`` and numpy's arrays."""
    allow_checkpoint_globals()
    return torch.load(path, map_location=map_location, mmap=mmap, weights_only=True)


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


def is_psa_key(key: str) -> bool:
    """Whether a state-dict key belongs to a PSA block: the blocks are children named ``psa``
    of the residual blocks (the one definition, for a model's keys and a checkpoint's alike)."""
    return '.psa.' in f'.{key}'


def psa_state_keys(model: nn.Module) -> Set[str]:
    """State-dict keys of ``model`` that belong to PSA blocks."""
    return {k for k in model.state_dict() if is_psa_key(k)}


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
            key of the model is missing or has another shape, or the checkpoint holds PSA
            keys the model does not have (:func:`fit_problem`).
    """
    report = compare_state_dict(model, state_dict, source)
    # an init checkpoint (ImageNet weights, a baseline) may lack the PSA keys and hold keys the
    # model lacks (a classifier): the rule check_fit applies to init_cfg in the pre-flight
    problem = fit_problem(report, model, allow_missing_psa=True, allow_extra=True)
    if strict and problem:
        raise CheckpointMismatchError(f'{source} does not fit the model: {problem}. '
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
    ``Pretrained`` init does: a full pose model's checkpoint can initialise a backbone. A local
    file is read as every entry point reads one (:func:`load_checkpoint_file`: a release's
    sha256, a truncated or foreign file are one line); URLs and ``torchvision://`` through
    mmengine, which downloads them.
    """
    if '://' in filename:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    else:
        named = '(init_cfg Pretrained checkpoint)'
        verify_published(filename)
        checkpoint = load_checkpoint_file(filename, named)
        tensors_of(checkpoint, filename, named)
    state_dict = state_dict_from(checkpoint, filename, prefix)
    return load_state_dict_report(model, state_dict, source=filename, strict=strict)


class ChecksumError(UserError):
    """A published checkpoint whose sha256 does not match the one in its file name."""


def verify_published(path: str) -> None:
    """For a file named like a release (``<name>-<sha256[:8]>_<date>.pth``), raise
    :class:`ChecksumError` unless its sha256 matches the name; other names are not checked."""
    m = PUBLISHED.search(os.path.basename(path))
    if m is None:
        return
    sha = sha256_of(path)
    if sha[:8] != m['sha']:
        raise ChecksumError(f'{path}: sha256 starts with {sha[:8]}, the name says {m["sha"]}; '
                            f'the file is corrupt or was changed: download it again')


def _lost_its_end(path: str) -> bool:
    """A file that starts as a zip (torch.save's format) but has no zip index at its end: a
    download or a copy cut short. torch reports it as one of several unrelated errors."""
    with open(path, 'rb') as f:
        return f.read(4) == b'PK\x03\x04' and not zipfile.is_zipfile(path)


def _torch_load(path: str) -> Any:
    # an intact zip checkpoint is memory-mapped: only its index is read here; anything else
    # (an old-format checkpoint or not a checkpoint at all) is read normally, and torch says
    # what is wrong with it
    mmap = zipfile.is_zipfile(path)
    with warnings.catch_warnings():
        # torch warns about the pickle protocol of files it then loads or refuses: the one
        # line of the error (or nothing) is what the user should see
        warnings.simplefilter('ignore')
        try:
            return load_weights_only(path, mmap=mmap)
        except pickle.UnpicklingError:
            # training checkpoints hold numpy objects in their meta: mmengine's loader falls
            # back the same way, so the file is trusted as much as the run will trust it
            return torch.load(path, map_location='cpu', mmap=mmap, weights_only=False)


def load_checkpoint_file(path: str, named: str) -> Any:
    """What the local checkpoint file ``path`` holds, or a one-line :class:`UserError`: missing,
    cut short, or not a checkpoint. ``named`` (e.g. ``'(load_from in x.py)'``) says what the
    file is for."""
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise UserError(f'{path}: no such checkpoint file {named}; fix the path or download the '
                        f'checkpoint')
    if _lost_its_end(path):
        raise UserError(f'{path}: is truncated (a zip checkpoint without the index at its end, '
                        f'{osp.getsize(path)} bytes) {named}; copy or download it again')
    try:
        return _torch_load(path)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise UserError(f'{path}: cannot be read as a PyTorch checkpoint ({first_line(e)}) '
                        f'{named}; the file is truncated or is not a checkpoint: copy or '
                        f'download it again') from None


def tensors_of(checkpoint: Any, source: str, named: str,
               prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The state dict of a loaded checkpoint (:func:`state_dict_from`), or a one-line
    :class:`UserError` when it holds none, or holds something other than tensors."""
    try:
        state_dict = state_dict_from(checkpoint, source, prefix)
    except CheckpointMismatchError as e:
        raise UserError(f'{e} {named}; use a checkpoint saved by torch.save/mmengine') from None
    bad = next((k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None or not state_dict:
        found = f'{bad!r} is a {type(state_dict[bad]).__name__}' if bad else 'it is empty'
        raise UserError(f'{source}: holds no state dict of tensors ({found}) {named}; use a '
                        f'checkpoint saved by torch.save/mmengine')
    return state_dict


def _some(keys: List[str]) -> str:
    return ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')


def fit_problem(report: LoadReport, model: nn.Module, allow_missing_psa: bool = False,
           allow_extra: bool = False) -> str:
    """What of a checkpoint does not fit ``model`` (``report`` from
    :func:`compare_state_dict`), in words, or '' when it fits.

    Keys and shapes must fit exactly, except: with ``allow_missing_psa`` the model's PSA keys
    may be missing (a baseline checkpoint initialising a PSA model for training); with
    ``allow_extra`` the checkpoint may have non-PSA keys the model lacks (an ImageNet
    classifier's ``fc.*`` under ``init_cfg=Pretrained``).
    """
    parts = []
    extra_psa = [k for k in report.unexpected if is_psa_key(k)]
    extra = [k for k in report.unexpected if not is_psa_key(k)]
    if extra_psa:
        if psa_state_keys(model):
            parts.append(f'has {len(extra_psa)} PSA keys the model does not have (e.g. '
                         f'{_some(extra_psa)}): it was trained with other PSA stages')
        else:
            parts.append(f'has {len(extra_psa)} PSA keys the baseline config does not have: '
                         f'it was trained with a PSA config')
    if report.missing_psa and not allow_missing_psa:
        if not extra_psa and not any(is_psa_key(k) for k in report.loaded):
            parts.append(f'lacks the {len(report.missing_psa)} PSA keys of the PSA config: it '
                         f'was trained with a baseline config')
        else:
            parts.append(f'{len(report.missing_psa)} PSA keys missing from it (e.g. '
                         f'{_some(report.missing_psa)})')
    if report.problem():
        parts.append(report.problem())
    if extra and not allow_extra:
        parts.append(f'has {len(extra)} keys the model does not have (e.g. {_some(extra)})')
    return '; '.join(parts)


def check_fit(model: nn.Module, state_dict: Dict[str, torch.Tensor], checkpoint: str,
              config: str, fix: str, allow_missing_psa: bool = False,
              allow_extra: bool = False) -> LoadReport:
    """The one rule for a checkpoint loaded into the model of ``config`` (by every entry
    point): :func:`fit_problem` must be empty, else one :class:`UserError` line naming the
    checkpoint, the config, what does not fit and ``fix``. Nothing is loaded."""
    report = compare_state_dict(model, state_dict, checkpoint)
    problem = fit_problem(report, model, allow_missing_psa, allow_extra)
    if problem:
        raise UserError(f'{checkpoint}: does not fit the model of {config}: {problem}; {fix}')
    return report


def load_fitting(model: nn.Module, checkpoint: str, config: str, named: str,
                 fix: str) -> Tuple[Any, LoadReport]:
    """Read ``checkpoint`` (a release's sha256 checked against its name), check that it fits
    ``model`` exactly (:func:`check_fit`) and load it; return what the file holds (for its
    ``meta``) and the report."""
    verify_published(checkpoint)
    ckpt = load_checkpoint_file(checkpoint, named)
    state_dict = tensors_of(ckpt, checkpoint, named)
    report = check_fit(model, state_dict, checkpoint, config, fix)
    model.load_state_dict({k: state_dict[k] for k in report.loaded}, strict=False)
    return ckpt, report
