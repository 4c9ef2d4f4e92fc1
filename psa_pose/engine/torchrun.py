"""torchrun as ``scripts/dist_train.sh`` and ``dist_test.sh`` start it, ending in one line.

``python -m psa_pose.engine.torchrun [torchrun arguments]`` runs torchrun's own ``run`` in
this process with two changes:

* SIGTERM and SIGUSR1 (what Slurm sends to every process of a job step before preemption or
  at the time limit; ``sbatch --signal=USR1@T``) are passed on to the workers, which save the
  current iteration and stop (:mod:`.preemption`). torchrun would instead stop them itself,
  SIGTERM and SIGKILL 30 s later, and end in a ``SignalException`` traceback; it would die of
  SIGUSR1.
* When workers fail, torchrun's ``ChildFailedError`` report (a traceback and a 20-line box)
  becomes at most one line: none when a worker exited with code 2 or 130 (it printed its own
  line: a mistake, a preemption, a lost node, Ctrl-C; torchrun then stopped the others), else
  one naming the first to fail (killed by a signal, or ended in a traceback). The exit code is
  that worker's (128 + N for signal N).
"""
import logging
import os
import signal
import sys
from typing import List

FORWARDED = (signal.SIGTERM, signal.SIGUSR1)
SAID_BY_THE_WORKER = (2, 130)       # exit codes of the tools' one-line errors and of Ctrl-C


def children(parent: int) -> List[int]:
    """The PIDs whose parent is ``parent`` (in torchrun: its workers, which run in sessions of
    their own, so that a signal to the launcher's process group does not reach them)."""
    me, pids = str(parent), []
    for name in os.listdir('/proc'):
        try:
            with open(f'/proc/{name}/stat') as f:
                ppid = f.read().rsplit(')', 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if name.isdigit() and ppid == me:
            pids.append(int(name))
    return pids


def _forward(signum: int, frame) -> None:
    for pid in children(os.getpid()):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def failure_line(rank: int, first, node: int) -> str:
    """One line for torchrun's first failure (``ChildFailedError.get_first_failure``)."""
    who = f'worker rank {rank} (local rank {first.local_rank}) on node rank {node}'
    if first.exitcode < 0:
        return (f'{who} was killed by {first.signal_name()}, so torchrun stopped the workers '
                f'of this node (out of memory? see dmesg); run the same command again (with '
                f'--resume to continue a training)')
    return (f'{who} ended with exit code {first.exitcode} (its traceback is above), so '
            f'torchrun stopped the workers of this node')


def main(argv: List[str]) -> int:
    """torchrun ``argv``; exit code (see the module docstring)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    for sig in FORWARDED:
        signal.signal(sig, _forward)
    # the failure is said in one line here (or by the workers), not in torchrun's log too
    logging.getLogger('torch.distributed.elastic.multiprocessing.api').setLevel(
        logging.CRITICAL)
    args = parse_args(argv)
    args.signals_to_handle = 'SIGINT,SIGHUP,SIGQUIT'     # torchrun's default, less SIGTERM
    try:
        run(args)
    except ChildFailedError as e:
        rank, first = e.get_first_failure()
        said = [f.exitcode for f in e.failures.values() if f.exitcode in SAID_BY_THE_WORKER]
        if said:        # the others were stopped by torchrun (SIGTERM), often as they exited
            return said[0]
        print(f'error: {failure_line(rank, first, args.node_rank)}', file=sys.stderr)
        return 128 - first.exitcode if first.exitcode < 0 else first.exitcode
    except SignalException as e:
        # Ctrl-C (SIGINT), SIGHUP, SIGQUIT: torchrun passed it on to the workers, which said
        # how far they got (Ctrl-C: 'interrupted at iteration N ...')
        return 128 + int(e.sigval)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
