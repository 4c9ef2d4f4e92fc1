"""Preemption-safe training: SIGTERM / SIGUSR1 save the current iteration and stop.

Slurm sends SIGTERM before it preempts a job or at its time limit (and ``sbatch --signal=USR1@T``
sends SIGUSR1 T seconds ahead); Python's default ends the process at once (exit 143) and the
epoch so far is lost. :class:`PreemptionHook` turns the signal into a flag; at the end of the
iteration it is in, every rank agrees to stop, rank 0 saves ``iter_N.pth`` atomically and
``last_checkpoint`` names it, and :class:`Preempted` ends the run with one line holding the
command that resumes it.

Resuming an epoch-based run from a mid-epoch checkpoint: mmengine restarts the epoch from its
first batch. The hook makes the resumed epoch draw, and drop, the batches done before the
checkpoint (with :class:`EpochSeedHook` the random augmentation is a function of seed and epoch,
so drawing them again puts every random state where the uninterrupted run had it) and then
train on the rest: the same weights as without the interruption. In a distributed run the
checkpoint also holds every rank's buffers (``rank_buffers``: batch norm's running statistics
differ between ranks until ``SyncBuffersHook`` averages them at the end of the epoch), and
each rank resumes with its own.
"""
import os
import os.path as osp
import shlex
import signal
import sys
from typing import Any, Iterator, List, Optional

from mmengine.hooks import Hook
from mmpose.registry import HOOKS

from ..utils import UserError
from .fileio import ATOMIC_LOCAL, write_atomic

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(UserError):
    """Training stopped on SIGTERM/SIGUSR1 after saving the current iteration (one line)."""


class _SkipFirst:
    """A dataloader whose next pass draws its first ``skip`` batches without yielding them."""

    def __init__(self, loader, skip: int) -> None:
        self.__dict__.update(_loader=loader, _skip=skip)

    def __iter__(self) -> Iterator[Any]:
        skip, self.__dict__['_skip'] = self._skip, 0
        for i, batch in enumerate(self._loader):
            if i >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """See the module docstring. ``command``: the training's command line (``sys.argv``, set by
    :func:`set_command`), for the line that says how to resume. Priority ``LOWEST``: the
    iteration's checkpoint is saved after the parameter schedulers stepped (as the
    CheckpointHook's), and the resumed epoch's batches are skipped after
    :class:`EpochSeedHook` re-seeded it."""

    priority = 'LOWEST'

    def __init__(self, command: Optional[List[str]] = None) -> None:
        self.command = command
        self.signal: Optional[int] = None
        self._previous = {}
        self._rank_buffers: Optional[List[dict]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rank_buffers is not None:
            checkpoint['rank_buffers'] = self._rank_buffers

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Each rank resumes with its own buffers (batch norm's running statistics) of the
        iteration's checkpoint: they differ between ranks until ``SyncBuffersHook`` averages
        them at the end of the epoch, and rank 0's alone would change that average. Runs
        before mmengine loads the state dict, so it edits the dict."""
        from mmengine.dist import get_rank, get_world_size
        buffers = checkpoint.get('rank_buffers')
        if buffers and len(buffers) == get_world_size():
            checkpoint['state_dict'].update(buffers[get_rank()])

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def before_train(self, runner) -> None:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def after_train(self, runner) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if 0 < done < len(loop.dataloader):        # resumed from a mid-epoch checkpoint
            runner.logger.info(f'resuming epoch {runner.epoch + 1} after its batch {done}: '
                               f'drawing the first {done} batches again without training')
            loop.dataloader = _SkipFirst(loop.dataloader, done)

    def after_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop.dataloader, _SkipFirst):
            loop.dataloader = loop.dataloader._loader

    def _stop_everywhere(self) -> bool:
        """Whether any rank got the signal (all ranks must stop at the same iteration)."""
        import torch
        from mmengine.dist import all_reduce, is_distributed
        flag = self.signal is not None
        if not is_distributed():
            return flag
        t = torch.tensor([int(flag)])
        all_reduce(t, op='max')
        return bool(t.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._stop_everywhere():
            return
        name = f'iter_{runner.iter + 1}.pth'
        self._rank_buffers = _gather_buffers(runner)
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False,
                               backend_args=dict(backend=ATOMIC_LOCAL))
        path = osp.join(runner.work_dir, name)
        from mmengine.dist import barrier, is_main_process
        if is_main_process():
            write_atomic(path, osp.join(runner.work_dir, 'last_checkpoint'))
        # every rank waits for rank 0's save: torchrun stops the others (SIGKILL 30 s after
        # SIGTERM) as soon as one rank exits
        barrier()
        signame = signal.Signals(self.signal).name if self.signal else 'a signal on another rank'
        how = resume_command(self.command) if self.command else \
            f'the same command with --resume {path}'
        if os.environ.get('GROUP_WORLD_SIZE', '1') != '1':     # torchrun on several nodes
            how += ' (on every node)'
        raise Preempted(f'{signame}: training stopped at iteration {runner.iter + 1} (epoch '
                        f'{runner.epoch + 1}, batch {batch_idx + 1}/'
                        f'{len(runner.train_dataloader)}); saved {path}; resume with: {how}')


def _gather_buffers(runner) -> Optional[List[dict]]:
    """Every rank's buffers (by state-dict name, on the CPU), in a distributed run."""
    from mmengine.dist import all_gather_object, is_distributed
    from mmengine.model import is_model_wrapper
    if not is_distributed():
        return None
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    state = model.state_dict()          # the persistent buffers only, as the checkpoint has
    return all_gather_object({name: state[name].detach().cpu()
                              for name, _ in model.named_buffers() if name in state})


def resume_command(argv: List[str]) -> str:
    """``argv`` (the command that started the training) with ``--resume`` (from the work
    dir's ``last_checkpoint``) in place of any ``--resume [CKPT]`` it had."""
    args, i = [], 0
    while i < len(argv):
        if argv[i] == '--resume':
            i += 2 if i + 1 < len(argv) and not argv[i + 1].startswith('-') else 1
            continue
        if argv[i].startswith('--resume='):
            i += 1
            continue
        args.append(argv[i])
        i += 1
    return shlex.join([*args, '--resume'])


# set by scripts/dist_train.sh: its own command line, one argument a line, for the workers
# torchrun starts (their sys.argv is train.py's, which alone would not resume a torchrun run)
COMMAND_VAR = 'PSA_POSE_COMMAND'


def set_command(cfg, argv: List[str]) -> None:
    """Give the config's :class:`PreemptionHook` the command line that started the training:
    the launch script's (``$PSA_POSE_COMMAND``), else ``python`` and ``argv``."""
    launcher = os.environ.get(COMMAND_VAR)
    command = launcher.split('\n') if launcher else \
        [osp.basename(sys.executable) if sys.executable else 'python', *argv]
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'PreemptionHook':
            hook.setdefault('command', command)
