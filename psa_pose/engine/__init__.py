"""Training-time safety: exact resume, atomic checkpoints, a stop on NaN/inf loss."""
from mmengine.config import Config

from .fileio import ATOMIC_LOCAL, AtomicLocalBackend, write_atomic
from .preemption import Preempted, PreemptionHook
from .hooks import (AtomicCheckpointHook, CheckFiniteLossHook, EpochSeedHook,
                    NonFiniteLossError, ValidateOnResumeHook, epoch_seed, last_checkpoint)

__all__ = ['ATOMIC_LOCAL', 'AtomicLocalBackend', 'write_atomic', 'AtomicCheckpointHook',
           'CheckFiniteLossHook', 'EpochSeedHook', 'NonFiniteLossError', 'ValidateOnResumeHook',
           'Preempted', 'PreemptionHook', 'epoch_seed',
           'last_checkpoint', 'add_safety_hooks']

# custom hooks tools/train.py adds unless the config lists them already
SAFETY_HOOKS = ('EpochSeedHook', 'CheckFiniteLossHook', 'ValidateOnResumeHook',
                'PreemptionHook')


def add_safety_hooks(cfg: Config) -> Config:
    """Make ``cfg``'s training resumable exactly and safe to interrupt (in place; returned).

    mmengine's plain ``CheckpointHook`` becomes :class:`AtomicCheckpointHook` (same settings);
    :class:`EpochSeedHook`, :class:`CheckFiniteLossHook`, :class:`ValidateOnResumeHook` and
    :class:`~.preemption.PreemptionHook` join ``custom_hooks``. A config that
    names its own checkpoint hook type, or lists these hooks, is left as it is.
    """
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in ('CheckpointHook',
                                                             'mmengine.CheckpointHook'):
        checkpoint['type'] = 'AtomicCheckpointHook'      # registered in mmpose's HOOKS
    custom = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in custom}
    custom += [dict(type=name) for name in SAFETY_HOOKS if name not in present]
    cfg.custom_hooks = custom
    return cfg
