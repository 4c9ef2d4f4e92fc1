"""``scripts/export_onnx.py``: export a pose model to ONNX and check it against PyTorch (see
:mod:`psa_pose.deploy.export`)."""
import argparse
from typing import List, Optional

from ..config import add_cfg_options

from ..deploy import export, sdk
from ..deploy.export import DEFAULT_OPSET, TOLERANCE, export_onnx
from ..utils import one_line_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=export.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='training checkpoint or published release')
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument('--out', help='MODEL.onnx')
    out.add_argument('--sdk', metavar='DIR', help="a new folder in mmdeploy's SDK layout, run by "
                     'mmdeploy_runtime (see psa_pose/deploy/sdk.py)')
    parser.add_argument('--input-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="network input (default: the config's codec)")
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET,
                        help='ONNX opset (default: %(default)s)')
    parser.add_argument('--check-ann', metavar='COCO.json',
                        help="crops for the check from this COCO keypoint file (images beside "
                        "it) instead of the config's test set")
    parser.add_argument('--check-samples', type=int, default=8,
                        help='people to check on (default: %(default)s)')
    parser.add_argument('--tolerance', type=float, default=TOLERANCE,
                        help='largest allowed |onnxruntime - pytorch| (default: %(default)s)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    with one_line_errors():
        run = sdk.export_sdk if args.sdk else export_onnx
        run(args.config, args.checkpoint, args.sdk or args.out, args.input_shape, args.opset,
            args.cfg_options, args.check_ann, args.check_samples, args.tolerance)
    return 0


