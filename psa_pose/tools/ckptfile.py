"""Reading a checkpoint file, for every entry point that takes one (train, test, publish).

Each failure is one :class:`~psa_pose.utils.UserError` line naming the file, what is wrong
with it (missing, cut short, not a checkpoint, no tensors) and what to do.
"""
import os.path as osp
import pickle
import warnings
import zipfile
from typing import Any, Dict, Optional

import torch

from ..models.checkpoint import CheckpointMismatchError, state_dict_from
from ..utils import UserError


def first_line(e: BaseException) -> str:
    """``Type: first sentence`` of an exception, short enough for one line."""
    lines = str(e).strip().splitlines()
    text = lines[0].split('. ')[0][:120] if lines else ''
    return f'{type(e).__name__}: {text}' if text else type(e).__name__


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
            return torch.load(path, map_location='cpu', mmap=mmap, weights_only=True)
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
