"""Train a config with mmengine's Runner; mmpose's ``tools/train.py`` flags."""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config

from ..config import add_cfg_options, default_work_dir, load_config
from ..engine import add_safety_hooks, last_checkpoint
from ..engine.preemption import set_command
from ..engine.workdir import holding_work_dir
from ..utils import UserError, one_line_errors
from ..engine.preflight import checked_runner
from ..engine.runner import build_runner, end_distributed, parse_with_launcher


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a pose model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT; without CKPT (or "auto"), from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (float16; needs a GPU)')
    parser.add_argument('--skip-bad-images', action='store_true',
                        help='skip training images that cannot be decoded (each is logged '
                        'with a count) instead of stopping at the first')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the training step (mmengine\'s compile setting)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size over the config\'s')
    add_cfg_options(parser)
    parser.add_argument('--check', action='store_true',
                        help='only run the pre-flight checks and print what the run would use '
                        '(data, detections, pretrained weights); exit 0 or one-line errors')
    return parse_with_launcher(parser, argv)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """The command line over the config, as mmpose's tools/train.py does."""
    cfg.launcher = args.launcher
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            # mmengine's AmpOptimWrapper asserts an accelerator (CUDA, NPU, MLU, MUSA)
            raise UserError('--amp: no GPU is visible, and mixed precision here is mmengine\'s '
                            'AmpOptimWrapper, which runs only on GPUs; drop --amp to train in '
                            'float32 on the CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise UserError(f'{args.resume}: no such checkpoint to resume from')
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.compile:
        cfg.compile = True
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    return cfg


def main(argv: Optional[List[str]] = None) -> int:
    from ..data.coco import ImageDecodeError, decode_error_line, use_checked_loading
    args = parse_args(argv)
    runner = None
    with one_line_errors():
        try:
            cfg = merge_args(load_config(args.config, args.cfg_options), args)
            if args.check:
                from ..engine.check_run import check_only
                return check_only(cfg, args.config, 'train')
            use_checked_loading(cfg, args.skip_bad_images)
            add_safety_hooks(cfg)
            set_command(cfg, [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
            runner = checked_runner(cfg, args.config,
                                    holding_work_dir(build_runner, 'training'), 'train')
            runner.train()          # a NaN/inf loss: one line (engine.NonFiniteLossError)
            end_distributed()
        except ImageDecodeError as e:
            raise UserError(f'{decode_error_line(e)}: training stopped at iteration '
                            f'{runner.iter + 1}; {_resume_advice(runner)}; replace or remove '
                            f'the image, or add --skip-bad-images to skip such images') from None
        except KeyboardInterrupt:
            return interrupted(runner)
    return 0


def _resume_advice(runner) -> str:
    last = last_checkpoint(runner.work_dir)
    return f'the last checkpoint is {last}; continue with --resume' if last else \
        'no checkpoint was saved yet; run the same command to start again'


def interrupted(runner) -> int:
    """Ctrl-C: one line instead of the KeyboardInterrupt traceback, exit code 130 (as a shell
    reports SIGINT). Checkpoints are written atomically, so nothing is half-written."""
    if runner is None:
        print('interrupted before training started; nothing was written', file=sys.stderr)
    else:
        print(f'interrupted at iteration {runner.iter + 1}; {_resume_advice(runner)}',
              file=sys.stderr)
    return 130
