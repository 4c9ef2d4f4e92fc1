"""What ``scripts/train.py`` and ``scripts/test.py`` run, apart from their command lines: the
command line merged over the config, the checked Runner, and one line for what can go wrong
(a bad image, Ctrl-C, a release whose hash does not match)."""
import argparse
import os.path as osp
import re
import sys
from typing import List

from mmengine.config import Config

from ..config import default_work_dir, evaluators, load_config
from ..evaluation import test_outputs as out
from ..models.checkpoint import verify_published
from ..utils import UserError, no_space_errors, sha256_of
from . import add_safety_hooks, last_checkpoint
from .preemption import Preempted, set_command
from .preflight import checked_runner
from .runner import build_runner, end_distributed, is_lost_worker, lost_nodes
from .workdir import holding_work_dir


def merge_train_args(cfg: Config, args: argparse.Namespace) -> Config:
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


def train(args: argparse.Namespace, argv: List[str]) -> int:
    """``scripts/train.py``'s run (``args`` from its command line, ``argv`` to tell a preempted
    run how to resume): the pre-flight, the Runner with the safety hooks, training; exit code.
    Ctrl-C is one line and exit code 130; a bad image is one :class:`UserError` line."""
    from ..data.coco import ImageDecodeError, decode_error_line, use_checked_loading
    runner = None
    try:
        cfg = merge_train_args(load_config(args.config, args.cfg_options), args)
        if args.check:
            from .check_run import check_only
            return check_only(cfg, args.config, 'train')
        use_checked_loading(cfg, args.skip_bad_images)
        add_safety_hooks(cfg)
        set_command(cfg, argv)
        runner = checked_runner(cfg, args.config, holding_work_dir(build_runner, 'training'),
                                'train')
        runner.train()          # a NaN/inf loss: one line (engine.NonFiniteLossError)
        end_distributed()
    except Preempted:
        from mmengine.dist import is_main_process
        if not is_main_process():
            return 2            # rank 0 says it, once
        raise
    except ImageDecodeError as e:
        raise UserError(f'{decode_error_line(e)}: training stopped at iteration '
                        f'{runner.iter + 1}; {_resume_advice(runner)}; replace or remove '
                        f'the image, or add --skip-bad-images to skip such images') from None
    except KeyboardInterrupt:
        return interrupted(runner)
    except Exception as e:
        if runner is None or not is_lost_worker(e):
            raise
        return worker_lost(e, f'training stopped at iteration {runner.iter + 1}; '
                              f'{_resume_advice(runner)} on every node')
    return 0


def worker_lost(e: BaseException, what: str) -> int:
    """A collective failed because a process of the run is gone (killed, out of memory, its
    node down): one line from the first surviving rank of each node naming the lost node
    ranks (:func:`~.runner.lost_nodes`) instead of gloo's traceback on every rank; exit
    code 2."""
    nodes, speaks = lost_nodes()
    if speaks:
        cause = re.sub(r'^\[[^\]]*\] ', '', str(e).splitlines()[0] if str(e) else '')
        cause = cause.split('. ')[0]
        lost = (f'the workers on node ranks {", ".join(map(str, nodes))} were' if len(nodes) > 1
                else f'the worker on node rank {nodes[0]} was' if nodes
                else 'a worker was')        # all answered the roll call after all
        print(f'error: {lost} lost ({cause}); {what}', file=sys.stderr)
    return 2


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


def test(args: argparse.Namespace) -> int:
    """``scripts/test.py``'s run (``args`` from its command line): the pre-flight, the Runner,
    testing, and the outputs written all or nothing; exit code (130 with one line on Ctrl-C)."""
    try:
        code = _test(args)
        end_distributed()
        return code
    except KeyboardInterrupt:
        print('interrupted; no metrics, predictions or COCO results were written',
              file=sys.stderr)
        return 130


def _test(args: argparse.Namespace) -> int:
    from ..data.coco import ImageDecodeError, decode_error_line, use_checked_loading
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise UserError(f'{args.checkpoint}: no such checkpoint file')
    verify_published(args.checkpoint)           # a release whose hash does not match
    cfg.launcher = args.launcher
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.dump:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise UserError(f'{args.dump}: --dump needs a .pkl or .pickle file name')
        cfg.test_evaluator = [*evaluators(cfg), dict(type='DumpResults',
                                                     out_file_path=out.dump_temp(args.dump))]
    prefix = None
    if args.coco_results and not args.coco_results.endswith('.json'):
        raise UserError(f'{args.coco_results}: --coco-results needs a .json file name')
    out.check_test_outputs(cfg, args.config, args.checkpoint, args.out, args.coco_results,
                           args.dump)
    evaluator = out.scoring_evaluator(cfg)
    if args.coco_results or evaluator.get('type') == out.COCO_METRIC:
        # CocoMetric writes {outfile_prefix}.keypoints.json: kept, to be checked
        prefix = osp.join(cfg.work_dir, 'coco_results')
        evaluator.outfile_prefix = prefix
    if args.check:
        from ..engine.check_run import check_only
        return check_only(cfg, args.config, 'test')
    use_checked_loading(cfg)
    runner = checked_runner(cfg, args.config, holding_work_dir(build_runner, 'testing'),
                            'test')
    if args.compile:
        from ..models.compile import compile_tensor_path
        from mmengine.model import is_model_wrapper
        compile_tensor_path(runner.model.module if is_model_wrapper(runner.model)
                            else runner.model)
    try:
        with no_space_errors(args.dump or cfg.work_dir):
            metrics = runner.test()
    except ImageDecodeError as e:
        raise UserError(f'{decode_error_line(e)}: testing stopped, no metrics written; '
                        f'replace the image (a test set with an image left out is another '
                        f'test set)') from None
    except BaseException:
        out.discard_test_outputs(args.dump)
        raise
    from mmengine.dist import is_main_process
    if not is_main_process():
        return 0
    ann_file = evaluator.get('ann_file')
    # what compare_ap.py needs to bootstrap this run against another (its COCO results, the
    # ground truth, the seed; recorded with their sha256) and what publish_model.py checks
    # the metrics against: this checkpoint, this config
    record = {'config': config_name(args.config),
              **({'config_file': osp.abspath(args.config)} if osp.isfile(args.config) else {}),
              'checkpoint': osp.abspath(args.checkpoint),
              'checkpoint_sha256': sha256_of(args.checkpoint),
              'seed': cfg.get('randomness', {}).get('seed')}
    for line in out.write_test_outputs(
            metrics, record, args.out, prefix and f'{prefix}.keypoints.json',
            args.coco_results, args.dump, ann_file, out.partial_by_design(cfg)):
        print(line)
    return 0


def config_name(config: str) -> str:
    """The name a metrics file records for a config file (its file name without ``.py``)."""
    return osp.splitext(osp.basename(config))[0]
