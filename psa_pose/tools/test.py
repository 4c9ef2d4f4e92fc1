"""Evaluate a checkpoint on a config's test set; mmpose's ``tools/test.py`` flags, plus
``--coco-results`` (the COCO results JSON, for scripts/eval_coco.py)."""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from ..config import add_cfg_options, default_work_dir, evaluators, load_config
from ..evaluation import test_outputs as out
from ..engine.preflight import checked_runner
from ..engine.workdir import holding_work_dir
from ..engine.runner import build_runner, end_distributed, parse_with_launcher
from ..models.checkpoint import verify_published
from ..utils import UserError, no_space_errors, one_line_errors, sha256_of


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a pose model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save evaluation logs')
    parser.add_argument('--out', help='write the metrics here as JSON')
    parser.add_argument('--dump', help='dump the predictions to a pickle file')
    parser.add_argument('--coco-results', metavar='JSON',
                        help='also write the predictions as a COCO keypoint results JSON')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the backbone, neck and head forward')
    add_cfg_options(parser)
    parser.add_argument('--check', action='store_true',
                        help='only run the pre-flight checks and print what the run would use '
                        '(data, detections, checkpoint); exit 0 or one-line errors')
    return parse_with_launcher(parser, argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    with one_line_errors():
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
