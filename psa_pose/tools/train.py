"""Train a config with mmengine's Runner; mmpose's ``tools/train.py`` flags."""
import argparse
import sys
from typing import List, Optional

from ..config import add_cfg_options
from ..engine.run import train
from ..engine.runner import parse_with_launcher
from ..utils import one_line_errors


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


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    with one_line_errors():
        return train(args, [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
