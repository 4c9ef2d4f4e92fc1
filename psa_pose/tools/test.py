"""Evaluate a checkpoint on a config's test set; mmpose's ``tools/test.py`` flags, plus
``--coco-results`` (the COCO results JSON, for scripts/eval_coco.py)."""
import argparse
from typing import List, Optional

from ..config import add_cfg_options
from ..engine.run import test
from ..engine.runner import parse_with_launcher
from ..utils import one_line_errors


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
        return test(args)
