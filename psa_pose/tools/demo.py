"""``scripts/demo.py``: a model's keypoints drawn on an image (see :mod:`psa_pose.deploy.demo`)."""
import argparse
import os.path as osp
from typing import List, Optional

from ..deploy import demo
from ..deploy.demo import draw, load_model, read_bboxes
from ..utils import UserError, one_line_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=demo.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--bboxes', metavar='JSON', help='person boxes (see above)')
    parser.add_argument('--out', required=True, help='the drawing (e.g. out.png)')
    parser.add_argument('--bbox-thr', type=float, default=0.3,
                        help='minimum detection score (default: %(default)s)')
    parser.add_argument('--kpt-thr', type=float, default=0.3,
                        help='draw keypoints scoring at least this (default: %(default)s)')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0 (default: %(default)s)')
    args = parser.parse_args(argv)
    with one_line_errors():
        if not osp.isfile(args.image):
            raise UserError(f'{args.image}: no such image')
        boxes = read_bboxes(args.bboxes, args.image, args.bbox_thr) if args.bboxes else None
        model = load_model(args.config, args.checkpoint, args.device)
        result = draw(model, args.image, boxes, args.out, args.kpt_thr)
    n = len(result.pred_instances) if 'pred_instances' in result else 0
    print(f'{n} people drawn to {args.out}')
    return 0
