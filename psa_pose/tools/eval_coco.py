"""``scripts/eval_coco.py``: COCO keypoint AP of a results file (pycocotools' COCOeval)."""
import argparse
import os
from typing import List, Optional

from ..evaluation.coco import evaluate, format_table
from ..utils import check_outputs, one_line_errors, write_json


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='COCO keypoint AP with pycocotools.')
    parser.add_argument('--gt', required=True, help='COCO person keypoints annotation JSON')
    parser.add_argument('--results', required=True, help='COCO keypoint results JSON')
    parser.add_argument('--out', help='write the metrics here as JSON')
    parser.add_argument('--partial', action='store_true',
                        help='the results leave images with people out on purpose (else '
                        'such results are refused)')
    args = parser.parse_args(argv)
    with one_line_errors():
        check_outputs({'--out': args.out}, {'--gt': args.gt, '--results': args.results})
        metrics = evaluate(args.gt, args.results, partial=args.partial)
        print(format_table(metrics))
        if args.out:
            write_json({'gt': os.path.abspath(args.gt),
                        'results': os.path.abspath(args.results), **metrics}, args.out)
            print(f'metrics written to {args.out}')
    return 0
