"""Parameters and GFLOPs of a config's model (mmengine's counter; see psa_pose.config.measure)."""
import argparse
import os.path as osp
from typing import List, Optional

from ..config import add_cfg_options, input_hw, load_config, measure
from ..utils import UserError, one_line_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Params and GFLOPs of a config at batch 1')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--input-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the config codec\'s input size)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    with one_line_errors():
        cfg = load_config(args.config, args.cfg_options)
        hw = tuple(args.input_shape) if args.input_shape else input_hw(cfg)
        if min(hw) < 32:
            raise UserError(f'--input-shape {hw[0]} {hw[1]}: too small for these backbones')
        params, gflops = measure(cfg, hw)
    print(f'config: {osp.basename(args.config)}\ninput shape: 1x3x{hw[0]}x{hw[1]}\n'
          f'params: {params / 1e6:.3f}M ({params})\nGFLOPs: {gflops:.3f}')
    return 0
