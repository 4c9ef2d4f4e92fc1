"""What train.py and test.py share: mmpose's launcher arguments and building the Runner."""
import argparse
import os

from mmengine.config import Config


def parse_with_launcher(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Add mmpose's ``--launcher`` / ``--local-rank`` arguments, parse, and export LOCAL_RANK
    (torch.distributed.launch passes ``--local-rank``; torchrun sets the variable itself)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(cfg: Config):
    """mmengine's Runner (or the config's ``runner_type``) from a config."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
