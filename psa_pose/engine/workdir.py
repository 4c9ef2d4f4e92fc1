"""One run per work dir, and the clean-up of what killed runs left in it.

Two trainings (or a training and a test) writing into one ``--work-dir`` mix their checkpoints,
and the second used to delete the first's live staging folder as "left by an interrupted
save". :func:`hold_work_dir` takes an OS lock (``fcntl.flock`` on the folder itself, so no lock
file is left behind) that the kernel releases when the process ends, however it ends; a second
run is refused at once in one line naming the holder's PID. :func:`remove_stale_temporaries`
removes only the temporaries of processes that are no longer alive.
"""
import fcntl
import glob
import os
import os.path as osp
import re
import shutil
from typing import Any, Callable, Dict, List, Optional

from ..utils import UserError

# utils.temp_path's names, and the checkpoint hook's staging folder: '.NAME.tmpPID'
_TEMPORARY = re.compile(r'\..+\.tmp(\d+)')
_held: Dict[str, int] = {}


def _global_rank() -> int:
    """This process's rank as its launcher set it (torchrun, Slurm, MPI); 0 without one. Read
    before the process group exists."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0


def lock_holder(folder: str) -> Optional[int]:
    """The PID holding a ``flock`` on ``folder`` (from Linux's ``/proc/locks``), or None
    where it cannot be told."""
    try:
        inode = os.stat(folder).st_ino
        with open('/proc/locks') as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        # '1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF'
        if len(parts) >= 6 and parts[1] == 'FLOCK' and parts[5].rsplit(':', 1)[-1] == \
                str(inode):
            return int(parts[4])
    return None


def hold_work_dir(work_dir: str, what: str) -> None:
    """Lock ``work_dir`` (created if needed) for this process until it exits; ``what``: the
    run, for the message ('training', 'testing'). Only rank 0 of a distributed run locks (the
    others work for it). Raises a one-line :class:`UserError` when another live process holds
    it."""
    if _global_rank() != 0:
        return
    os.makedirs(work_dir, exist_ok=True)
    key = osp.realpath(work_dir)
    if key in _held:
        return
    fd = os.open(work_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = lock_holder(work_dir)
        holder = f'PID {pid}' if pid else 'another process'
        raise UserError(f'{work_dir}: another run ({holder}) is using this work dir; '
                        f'{what} here would mix its files with that run\'s; wait for it to '
                        f'end or pass another --work-dir') from None
    except OSError:
        os.close(fd)          # a file system without flock: nothing to guard with
        return
    _held[key] = fd


def holding_work_dir(build: Callable[[Any], Any], what: str) -> Callable[[Any], Any]:
    """``build(cfg)`` (the Runner) that first takes :func:`hold_work_dir` on ``cfg.work_dir``:
    for ``checked_runner``, so that the lock (which creates the folder) comes after the
    pre-flight, and a config or data mistake leaves no work dir behind."""
    def build_holding(cfg):
        hold_work_dir(cfg.work_dir, what)
        return build(cfg)
    return build_holding


def release_work_dir(work_dir: str) -> None:
    """Give the lock of :func:`hold_work_dir` back before the process ends (tests)."""
    fd = _held.pop(osp.realpath(work_dir), None)
    if fd is not None:
        os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False        # ours from a former life of this PID: no save of ours runs yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str, log: Callable[[str], None]) -> List[str]:
    """Remove the temporaries (``.NAME.tmpPID`` files and staging folders) in ``folder`` of
    processes that are no longer alive: what a kill during a save left. Those of live
    processes (another rank's save, a run this lock did not guard) are kept. Returns the
    removed paths; ``log`` gets one line for each."""
    removed = []
    for tmp in sorted(glob.glob(osp.join(folder, '.*.tmp[0-9]*'))):
        m = _TEMPORARY.fullmatch(osp.basename(tmp))
        if not m or _alive(int(m[1])):
            continue
        log(f'removing {tmp}, left by an interrupted save')
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.remove(tmp)
        removed.append(tmp)
    return removed
