"""Test-only faults for a training subprocess, chosen by environment variables.

Listed in tests/configs/td-hm_res18-w16_1xb2-3e_minicoco-128x96.py; it does nothing unless one of
these is set (E = epoch, B = batch within it, both counted from 1 as the log does):

* ``PSA_FAULT_KILL_AFTER=E:B``: SIGKILL the process itself after batch B of epoch E.
* ``PSA_FAULT_KILL_IN_WRITE=E:NAME``: while epoch E's checkpoint is saved, the first file
  opened for writing whose name contains NAME gets half its data, then the process is
  SIGKILLed -- a kill in the middle of writing that file.
* ``PSA_FAULT_ENOSPC_IN_WRITE=E:NAME``: the same, except that the write then fails as on a
  full disk (``OSError`` ``ENOSPC``) instead of killing the process.
* ``PSA_FAULT_NAN_BEFORE=E:B``: fill the first conv's weight with NaN before batch B of
  epoch E, so that batch's loss is NaN.
* ``PSA_FAULT_NAN_AFTER=E:B``: the same after batch B (after its loss was checked).
* ``PSA_FAULT_SIGINT_AFTER=E:B``: send the process SIGINT (what Ctrl-C sends) after batch B
  of epoch E.
* ``PSA_FAULT_SIGTERM_AFTER=E:B``: send it SIGTERM (what Slurm sends before preemption) after
  batch B of epoch E.
* ``PSA_FAULT_SIGTERM_STEP_AFTER=E:B``: under torchrun, rank 0 sends SIGTERM to every process
  of the run, as Slurm does to a job step: the launcher (its parent) and every worker.

Between epoch E's checkpoint and the record of its validation (``FaultBeforeBestHook`` must be
listed too for the second):

* ``PSA_FAULT_KILL_BEFORE_VAL=E``: SIGKILL as the validation of epoch E starts;
* ``PSA_FAULT_KILL_BEFORE_BEST=E``: after it computed the metrics, before the CheckpointHook
  writes ``best_*``;
* ``PSA_FAULT_KILL_AFTER_VAL=E``: after ``best_*`` was written, before ValidateOnResumeHook
  records the validation.
"""
import builtins
import errno
import os
import signal
from typing import Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS


def _at(var: str) -> Optional[Tuple[int, str]]:
    value = os.environ.get(var)
    if not value:
        return None
    epoch, rest = value.split(':', 1)
    return int(epoch), rest


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _full_disk() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _kill_in_write(name: str, then=_kill) -> None:
    """From now on, opening a file whose name contains ``name`` for writing writes half of
    what it is given, then kills the process (or calls ``then``)."""
    real_open = builtins.open

    class HalfThenKill:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            os.fsync(self.f.fileno())
            then()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, attr):
            return getattr(self.f, attr)

    def faulty_open(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and name in os.path.basename(file) and \
                any(m in mode for m in 'wax'):
            return HalfThenKill(f)
        return f

    builtins.open = faulty_open


@HOOKS.register_module()
class FaultInjectionHook(Hook):
    """See the module docstring. Priority ``LOWEST``: after every other hook of a stage."""

    priority = 'LOWEST'

    def _now(self, var: str, runner, batch_idx: int) -> bool:
        at = _at(var)
        return at is not None and at == (runner.epoch + 1, str(batch_idx + 1))

    def _poison(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        with torch.no_grad():
            model.backbone.conv1.weight.fill_(float('nan'))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._now('PSA_FAULT_NAN_BEFORE', runner, batch_idx):
            self._poison(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._now('PSA_FAULT_NAN_AFTER', runner, batch_idx):
            self._poison(runner)
        if self._now('PSA_FAULT_KILL_AFTER', runner, batch_idx):
            _kill()
        if self._now('PSA_FAULT_SIGINT_AFTER', runner, batch_idx):
            os.kill(os.getpid(), signal.SIGINT)     # Python raises KeyboardInterrupt here
        if self._now('PSA_FAULT_SIGTERM_AFTER', runner, batch_idx):
            os.kill(os.getpid(), signal.SIGTERM)    # what Slurm sends before preemption
        if self._now('PSA_FAULT_SIGTERM_STEP_AFTER', runner, batch_idx) and \
                os.environ.get('RANK') == '0':
            from psa_pose.engine.torchrun import children
            launcher = os.getppid()
            for pid in [launcher, *children(launcher)]:
                os.kill(pid, signal.SIGTERM)

    def before_val_epoch(self, runner) -> None:
        _kill_at_epoch('PSA_FAULT_KILL_BEFORE_VAL', runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        _kill_at_epoch('PSA_FAULT_KILL_AFTER_VAL', runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        at = _at('PSA_FAULT_KILL_IN_WRITE')
        if at is not None and at[0] == checkpoint['meta']['epoch']:
            _kill_in_write(at[1])
        at = _at('PSA_FAULT_ENOSPC_IN_WRITE')
        if at is not None and at[0] == checkpoint['meta']['epoch']:
            _kill_in_write(at[1], then=_full_disk)


def _kill_at_epoch(var: str, runner) -> None:
    if os.environ.get(var) == str(runner.epoch):     # in validation: epochs completed
        _kill()


@HOOKS.register_module()
class FaultBeforeBestHook(Hook):
    """``PSA_FAULT_KILL_BEFORE_BEST``: priority ``LOW``, before the CheckpointHook
    (``VERY_LOW``) saves the best checkpoint of a validation."""

    priority = 'LOW'

    def after_val_epoch(self, runner, metrics=None) -> None:
        _kill_at_epoch('PSA_FAULT_KILL_BEFORE_BEST', runner)
