"""``scripts/publish_model.py``: a release checkpoint from a training checkpoint (see
:mod:`psa_pose.deploy.publish`)."""
import argparse
from typing import List, Optional

from ..deploy.publish import release
from ..utils import one_line_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Release a checkpoint: weights + metadata, named OUT-<sha256[:8]>_<date>.pth')
    parser.add_argument('in_file', help='training checkpoint (e.g. work_dirs/x/epoch_210.pth)')
    parser.add_argument('out_file', help='output name without hash, e.g. releases/hrnet-w32-psa')
    parser.add_argument('--config', help='the config file (or model-zoo name) the checkpoint '
                        'was trained with; it must fit it (default: the metrics file\'s, else '
                        'the checkpoint\'s)')
    parser.add_argument('--metrics', help='metrics JSON from test.py --out (recorded and '
                        'added to the model zoo when the config is one of configs/)')
    parser.add_argument('--onnx', metavar='MODEL.onnx',
                        help='add this export (scripts/export_onnx.py) to the release, named '
                        'like the checkpoint, with its own sha256 in the metafile entry')
    parser.add_argument('--no-zoo', action='store_true',
                        help='do not add the entry to configs/results.json and the metafile')
    args = parser.parse_args(argv)
    with one_line_errors():
        release(args.in_file, args.out_file, args.config, args.metrics, args.onnx,
                zoo_entry=not args.no_zoo)
    return 0
