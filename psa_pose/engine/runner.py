"""What train.py and test.py share: mmpose's launcher arguments, the distributed process group,
and building the Runner.

On a node without a GPU (``torch.cuda.is_available()`` false, e.g. a CPU-only cluster node or
``CUDA_VISIBLE_DEVICES=``) torchrun and Slurm runs use the gloo backend: mmengine's launchers
always call ``torch.cuda.set_device`` and its model wrapper passes ``device_ids=[LOCAL_RANK]``,
which both fail without CUDA, so :func:`init_distributed` starts the process group itself
before the Runner is built (the Runner then finds it started and does not start another) and
wraps the model with ``device_ids=None``. On GPUs nothing changes: mmengine's own start (the
config's backend, nccl by default, one process per GPU).
"""
import argparse
import os
import time
from datetime import timedelta
from typing import List, Optional, Tuple
from unittest import mock

import torch
from mmengine.config import Config

from ..utils import fail

# What each launcher reads from the environment, and who sets it.
LAUNCHER_ENV = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'start it with torchrun: bash scripts/dist_train.sh CONFIG GPUS (dist_test.sh)'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'start it with srun: bash scripts/slurm_train.sh (slurm_test.sh)'),
    'mpi': (('OMPI_COMM_WORLD_LOCAL_RANK', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
             'MASTER_ADDR'), 'start it with mpirun'),
}


def parse_with_launcher(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Add mmpose's ``--launcher`` / ``--local-rank`` arguments, parse, and export LOCAL_RANK
    (torch.distributed.launch passes ``--local-rank``; torchrun sets the variable itself).
    A launcher whose variables are missing (``--launcher pytorch`` without torchrun) ends here
    with one line and exit code 2, not a ``KeyError`` from mmengine."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.launcher != 'none':
        names, how = LAUNCHER_ENV[args.launcher]
        missing = [name for name in names if name not in os.environ]
        if missing:
            fail(f'--launcher {args.launcher}: {", ".join(missing)} not set, so this process '
                 f'was not started by its launcher; {how}, or use --launcher none for one '
                 'process')
    return args


def init_distributed(cfg: Config) -> Optional[str]:
    """Start the process group for ``cfg.launcher`` when there is no GPU (gloo on CPU) and
    make ``cfg`` wrap the model for CPU; returns the line to log, or None when mmengine's own
    start applies (no launcher, a GPU, or a group already started)."""
    from mmengine.dist import get_world_size, init_dist, is_distributed
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or is_distributed() or torch.cuda.is_available():
        return None
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    asked = dist_cfg.get('backend', 'nccl')
    if asked == 'nccl':                 # the configs' default (mmpose's default_runtime)
        dist_cfg['backend'] = 'gloo'
    # mmengine's launcher reads its variables (scontrol for Slurm, MASTER_PORT, ...) and then
    # selects a CUDA device: on a CPU there is none to select.
    with mock.patch.object(torch.cuda, 'set_device', lambda device: None):
        init_dist(launcher, **dist_cfg)
    _wrap_for_cpu(cfg)
    return (f'distributed: no GPU on this node, so {get_world_size()} CPU processes with '
            f'the {dist_cfg["backend"]} backend' +
            (f' (instead of the config\'s {asked})' if asked != dist_cfg['backend'] else ''))


def _wrap_for_cpu(cfg: Config) -> None:
    """DistributedDataParallel on a CPU module needs ``device_ids=None``; mmengine's wrap
    passes ``[LOCAL_RANK]`` unless the config says otherwise."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    kind = wrapper.get('type', 'MMDistributedDataParallel')
    kind = MODEL_WRAPPERS.get(kind) if isinstance(kind, str) else kind
    if isinstance(kind, type) and issubclass(kind, DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def build_runner(cfg: Config):
    """mmengine's Runner (or the config's ``runner_type``) from a config, in a process group
    started by :func:`init_distributed` when the run is distributed on CPUs."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    note = init_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if note:
        runner.logger.info(note)    # rank 0's console and every rank's log file
    register_node()
    return runner


NODE_KEY, HERE_KEY = 'psa_pose/node/{}', 'psa_pose/here/{}'


def node_rank() -> int:
    """This process's node: torchrun's ``GROUP_RANK`` (its ``--node_rank``), Slurm's
    ``SLURM_NODEID``; 0 without a launcher."""
    return int(os.environ.get('GROUP_RANK', os.environ.get('SLURM_NODEID', 0)))


def register_node() -> None:
    """In a distributed run, record this rank's node in the process group's store, so that the
    survivors of a lost worker can name its node (:func:`lost_nodes`)."""
    from mmengine.dist import get_rank, is_distributed
    from .internals import process_group_store
    if is_distributed():
        process_group_store().set(NODE_KEY.format(get_rank()), str(node_rank()))


def is_lost_worker(e: BaseException) -> bool:
    """Whether ``e`` is a collective of a distributed run that failed because another
    process of the group is gone (gloo: connection closed or reset by the peer, a read
    error; torch's ``DistBackendError`` for the other backends)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return isinstance(e, getattr(dist, 'DistBackendError', ())) or \
        (isinstance(e, RuntimeError) and '/gloo/' in str(e))


def lost_nodes(wait_s: float = 10.0) -> Tuple[List[int], bool]:
    """After a collective failed (:func:`is_lost_worker`): every survivor answers a roll
    call in the process group's store and waits ``wait_s`` for the others. Returns the node
    ranks of the ranks that did not answer, and whether this rank is the one of its node to
    say so (the lowest that answered). The store itself gone means node rank 0, which holds
    it, was lost; then the first local process of each node says so."""
    from mmengine.dist import get_rank, get_world_size
    from .internals import process_group_store
    rank, world = get_rank(), get_world_size()
    try:
        store = process_group_store()
        store.set_timeout(timedelta(seconds=wait_s))
        store.set(HERE_KEY.format(rank), '1')
        keys = [HERE_KEY.format(r) for r in range(world)]
        deadline = time.monotonic() + wait_s
        while not store.check(keys) and time.monotonic() < deadline:
            time.sleep(0.2)
        here = [r for r in range(world) if store.check([HERE_KEY.format(r)])]
        node = {r: int(store.get(NODE_KEY.format(r))) for r in range(world)}
    except (RuntimeError, OSError):
        return [0], int(os.environ.get('LOCAL_RANK', 0)) == 0
    lost = sorted({node[r] for r in range(world) if r not in here})
    return lost, min(r for r in here if node[r] == node[rank]) == rank


def end_distributed() -> None:
    """After a run that ended well: every rank waits for the others, then the process group
    is torn down. A rank that exits while gloo's threads still run aborts ('terminate called
    without an active exception', SIGABRT), and torchrun reports the whole job as failed.
    Not for error paths: a rank that failed must exit, so that torchrun stops the others."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
