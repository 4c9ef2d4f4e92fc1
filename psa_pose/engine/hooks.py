"""Hooks that make training interruptible and fail fast (added by ``tools/train.py``).

* :class:`EpochSeedHook`: a resumed run repeats the uninterrupted run bit for bit.
* :class:`AtomicCheckpointHook`: a kill while saving never leaves a file that ``--resume``
  would pick up half-written.
* :class:`ValidateOnResumeHook`: a resumed run validates the epoch an interruption left
  unvalidated, so it picks the same best checkpoint as an uninterrupted one.
* :class:`CheckFiniteLossHook`: a NaN/inf loss stops training at once, with one line saying
  where, and no checkpoint of the broken weights is written.
"""
import json
import math
import os
import os.path as osp
import random
import shutil
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmpose.registry import HOOKS

from ..utils import UserError
from .fileio import ATOMIC_LOCAL, write_atomic
from .internals import built_for_training, randomness_cfg, update_val_interval
from .workdir import remove_stale_temporaries


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed for ``epoch`` of a run seeded ``seed``, well mixed (SeedSequence) so that
    neighbouring (seed, epoch) pairs do not give overlapping random streams."""
    return int(np.random.SeedSequence([seed % 2**32, epoch]).generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Re-seed ``random``, numpy and torch from ``(runner.seed, epoch)`` before every training
    epoch.

    Why: mmengine seeds the global RNGs once, when the Runner is built. The random transforms
    (mmpose's ``RandomFlip``, ``RandomBBoxTransform``, ... draw from ``np.random``) run in the
    main process with ``num_workers=0``, so epoch N's augmentation depends on every draw made
    since the start of the run; a run resumed at epoch N starts from the fresh seed instead and
    diverges from the uninterrupted one. Re-seeding per epoch makes the state at the start of
    every epoch a function of (seed, epoch) only. ``runner.seed`` is the one stored in (and,
    with ``randomness.seed=None``, restored from) the checkpoint, and includes the rank when
    ``randomness.diff_rank_seed`` is set.

    It also pins the sampler's shuffling seed to ``runner.seed``: with ``randomness.seed=None``
    mmengine builds the train dataloader (drawing a new random seed for the sampler) before it
    restores the checkpoint's seed, so a resumed run would otherwise visit the data in another
    order.

    Exact resume needs the dataloader's RNGs in the main process (``num_workers=0``) or
    non-persistent workers (re-seeded by mmengine each epoch); persistent workers keep their
    own RNG state, which no checkpoint stores.

    Priority ``NORMAL`` + 1 so that it runs after ``DistSamplerSeedHook`` (``NORMAL``) and
    before the epoch's first batch is drawn.
    """

    priority = 51

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        if getattr(loader, 'persistent_workers', False) and loader.num_workers > 0:
            runner.logger.warning(
                'EpochSeedHook: persistent dataloader workers keep their RNG state across '
                'epochs; a resumed run will not repeat the uninterrupted one exactly (set '
                'persistent_workers=False for exact resume)')

    def before_train_epoch(self, runner) -> None:
        seed = runner.seed
        sampler = getattr(runner.train_dataloader, 'sampler', None)
        diff_rank = randomness_cfg(runner).get('diff_rank_seed', False)
        if not diff_rank and isinstance(getattr(sampler, 'seed', None), int):
            sampler.seed = seed
        epoch_state = epoch_seed(seed, runner.epoch)
        random.seed(epoch_state)
        np.random.seed(epoch_state)
        torch.manual_seed(epoch_state)          # CPU and every CUDA device


@contextmanager
def _deferred_removals(hook: CheckpointHook) -> Iterator[List[str]]:
    """Collect the old checkpoints that mmengine deletes *before* saving the new one
    (``max_keep_ckpts``, the previous best), so that they can be deleted after it instead: a
    kill in between must not leave no checkpoint at all and ``last_checkpoint`` naming a
    deleted file."""
    backend, pending = hook.file_backend, []

    class Deferring:
        def remove(self, path):
            pending.append(path)

        def rmtree(self, path):
            pending.append(path)

        def __getattr__(self, name):
            return getattr(backend, name)

    hook.file_backend = Deferring()
    try:
        yield pending
    finally:
        hook.file_backend = backend


class _WorkDirRedirect:
    """The runner, except that ``work_dir`` is elsewhere: mmengine's CheckpointHook writes
    ``<work_dir>/last_checkpoint`` with a plain ``open(..., 'w')``, so it is made to write it to
    a staging folder, from which the hook renames it into place."""

    def __init__(self, runner, work_dir: str) -> None:
        self.__dict__.update(_runner=runner, work_dir=work_dir)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's :class:`CheckpointHook` (same arguments) whose files are never half-written.

    * checkpoints go through the ``atomic_local`` backend (temporary file, fsync, rename);
    * ``last_checkpoint`` is renamed into place once the checkpoint it names is complete;
    * old checkpoints (``max_keep_ckpts``, the previous best) are deleted after the new one is
      saved, not before.

    A kill at any moment therefore leaves the previous checkpoint and a ``last_checkpoint``
    naming it, or the new ones, and ``--resume`` works from either. Other backends (``s3://``,
    an explicit ``backend_args``) are used as configured.
    """

    def __init__(self, *args, backend_args: Optional[dict] = None, **kwargs) -> None:
        if backend_args is None and not kwargs.get('file_client_args'):
            backend_args = dict(backend=ATOMIC_LOCAL)
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            # temporaries of saves that a kill interrupted (utils.atomic_path's names, and
            # the staging folder below), only of processes that are gone
            for folder in {runner.work_dir, self.out_dir}:
                if isinstance(folder, str) and osp.isdir(folder):
                    remove_stale_temporaries(folder, runner.logger.info)

    def _finish_removals(self, pending: List[str]) -> None:
        keep = {self.last_ckpt, getattr(self, 'best_ckpt_path', None),
                *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in pending:
            if path in keep:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # named like atomic_path's temporaries, so that before_train clears it after a kill
        staging = osp.join(runner.work_dir, f'.last_checkpoint.staging.tmp{os.getpid()}')
        os.makedirs(staging, exist_ok=True)
        try:
            with _deferred_removals(self) as pending:
                super()._save_checkpoint_with_step(_WorkDirRedirect(runner, staging), step,
                                                   meta)
            staged = osp.join(staging, 'last_checkpoint')
            if osp.isfile(staged):           # only the main process writes it
                with open(staged) as f:
                    write_atomic(f.read(), osp.join(runner.work_dir, 'last_checkpoint'))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._finish_removals(pending)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with _deferred_removals(self) as pending:
            super()._save_best_checkpoint(runner, metrics)
        self._finish_removals(pending)


VALIDATION_RECORD = 'last_validation.json'


@HOOKS.register_module()
class ValidateOnResumeHook(Hook):
    """A resumed run validates the epoch whose validation the interruption cut off, and
    continues with the best-checkpoint state of the last validation that completed.

    Why: mmengine saves ``epoch_k.pth`` (and the best score so far, in its message hub) after
    training epoch k and before validating it. Killed in between, a run resumed from
    ``epoch_k.pth`` starts epoch k + 1: epoch k is never validated, and the "best" checkpoint
    can be another than an uninterrupted run's. Killed after the validation, the resumed run
    compares later epochs with a best score that lacks epoch k's.

    After every validation (and the best checkpoint's save: priority ``LOWEST``, after the
    CheckpointHook) rank 0 writes ``<work_dir>/last_validation.json`` atomically: the epoch
    and the message hub's ``best_*`` entries. At the start of a resumed epoch-based run whose
    epoch k was due for validation: if the record is of an earlier epoch, epoch k is validated
    now (every rank: validation is collective); if it is of epoch k, its best entries are
    restored.
    """

    priority = 'LOWEST'

    def after_val_epoch(self, runner, metrics=None) -> None:
        if not is_main_process() or not built_for_training(runner):
            return
        best = {k: v for k, v in runner.message_hub.runtime_info.items()
                if k.startswith('best_')}
        write_atomic(json.dumps({'epoch': runner.epoch, **best}),
                     osp.join(runner.work_dir, VALIDATION_RECORD))

    def before_train(self, runner) -> None:
        from mmengine.runner import EpochBasedTrainLoop
        loop = runner.train_loop
        epoch = runner.epoch
        if not isinstance(loop, EpochBasedTrainLoop) or epoch == 0 or runner.val_loop is None:
            return
        update_val_interval(loop)
        if epoch < loop.val_begin or (epoch % loop.val_interval and epoch != loop.max_epochs):
            return                          # epoch k had no validation to lose
        record = _read_record(runner.work_dir)
        done = record.get('epoch', 0)
        if done == epoch:
            for key, value in record.items():
                if key.startswith('best_'):
                    runner.message_hub.update_info(key, value)
            _reload_best_paths(runner)
        elif done < epoch:
            runner.logger.info(f'the validation of epoch {epoch} did not complete before the '
                               f'run stopped; validating it now, as the uninterrupted run did')
            runner.val_loop.run()


def _read_record(work_dir: str) -> Dict[str, Any]:
    path = osp.join(work_dir, VALIDATION_RECORD)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}                 # none yet (or a run of an older version): validate again
    return record if isinstance(record, dict) else {}


def _reload_best_paths(runner) -> None:
    """What ``CheckpointHook.before_train`` reads from the message hub, read again after the
    record's best entries replaced the checkpoint's."""
    hub = runner.message_hub
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook) or hook.save_best is None:
            continue
        if len(hook.key_indicators) == 1:
            hook.best_ckpt_path = hub.get_info('best_ckpt')
        else:
            for key in hook.key_indicators:
                hook.best_ckpt_path_dict[key] = hub.get_info(f'best_ckpt_{key}')


def last_checkpoint(work_dir: Optional[str], exists: bool = True) -> Optional[str]:
    """The last complete checkpoint of a run in ``work_dir`` (what ``--resume`` continues
    from), or None: mmengine's ``find_latest_checkpoint`` (the ``last_checkpoint`` file, not
    message_hub's ``last_ckpt``, which mmengine sets before it saves). With ``exists`` only
    where the file it names exists; without, what the pointer says (the pre-flight then
    refuses a missing file in one line)."""
    from mmengine.runner import find_latest_checkpoint
    if not work_dir or not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return None         # mmengine would log "Did not find last_checkpoint" for each call
    last = find_latest_checkpoint(work_dir)
    return last if last and (osp.isfile(last) or not exists) else None


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; training was stopped (one line, exit code 2)."""


def _non_finite(outputs: Dict[str, Any]) -> Dict[str, float]:
    """The loss entries of a train step's ``log_vars`` that are NaN or infinite."""
    bad = {}
    for name, value in outputs.items():
        if 'loss' not in name:
            continue
        value = float(value.detach().float().sum()) if torch.is_tensor(value) else float(value)
        if not math.isfinite(value):
            bad[name] = value
    return bad


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite.

    Unlike mmdet's ``CheckInvalidLossHook`` (an ``assert`` every ``interval`` iterations) this
    checks every iteration -- the value is already synchronised for the log, so it costs
    nothing -- and raises :class:`NonFiniteLossError` with the iteration, the epoch, the last
    checkpoint and what to do. It runs before the CheckpointHook (priority ``LOW`` vs
    ``VERY_LOW``), so an iteration-based save of the broken weights never happens; and it
    refuses to save a checkpoint whose weights are not finite (the optimizer step after the
    last checked loss can produce them).
    """

    priority = 'LOW'

    def _where(self, runner, batch_idx: int) -> str:
        """The current iteration, counted from 1 as the log does."""
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}'
        try:
            where += f', batch {batch_idx + 1}/{len(runner.train_dataloader)}'
        except TypeError:           # an infinite sampler has no length
            pass
        return where + ')'

    def _advice(self, runner) -> str:
        last = last_checkpoint(runner.work_dir)
        if last:
            resume = f'last good checkpoint: {last} (continue with --resume {last})'
        else:
            resume = 'no checkpoint was saved before it'
        return (f'training stopped; {resume}; lower the learning rate '
                '(optim_wrapper.optimizer.lr), clip gradients '
                '(optim_wrapper.clip_grad=dict(max_norm=...)) or check the annotations')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        bad = _non_finite(outputs or {})
        if bad:
            total = bad.get('loss', next(iter(bad.values())))
            parts = ', '.join(f'{k}={v}' for k, v in bad.items() if k != 'loss')
            raise NonFiniteLossError(
                f'loss is {total} at {self._where(runner, batch_idx)}'
                + (f' [{parts}]' if parts else '') + f': {self._advice(runner)}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = [k for k, v in checkpoint.get('state_dict', {}).items()
               if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise NonFiniteLossError(
                f'weights are not finite after iteration {runner.iter} ({len(bad)} tensors, '
                f'e.g. {bad[0]}); checkpoint not saved: {self._advice(runner)}')
