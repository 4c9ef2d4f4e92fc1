"""``scripts/benchmark_coco.py``: time COCO keypoint evaluation libraries against pycocotools
and check that their numbers are identical (see :mod:`psa_pose.evaluation.backends`)."""
import argparse
from typing import List, Optional

from ..evaluation import backends
from ..utils import write_json


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=backends.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--people', type=int, default=6000)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--backends', nargs='+', default=list(backends.BACKENDS),
                        choices=backends.BACKENDS)
    parser.add_argument('--out', help='write the rows here as JSON')
    args = parser.parse_args(argv)
    missing = [why for b in args.backends if (why := backends.available(b))]
    for why in missing:
        print(f'skipped: {why}')
    names = [b for b in args.backends if not backends.available(b)]
    print(f'{args.images} images, {args.people} people, seeds {args.seeds} ...', flush=True)
    rows = backends.compare(args.images, args.people, args.seeds, names)
    # eval_coco.py needs load + evaluate + accumulate/summarize; the bootstrap load + evaluate
    # + the per-image list (evalImgs)
    print('| seed | library | load s | evaluate s | accumulate+summarize s | evalImgs s | AP | '
          'stats identical | per-image identical |')
    print('|---|---|---|---|---|---|---|---|---|')
    same = {True: 'yes', False: 'NO', None: 'not exposed'}
    for r in rows:
        print(f"| {r['seed']} | {r['backend']} | {r['load_s']:.2f} | {r['evaluate_s']:.2f} | "
              f"{r['summarize_s']:.3f} | {r['per_image_s']:.2f} | {r['AP']:.4f} | "
              f"{same[r['stats_identical']]} | {same[r['per_image_identical']]} |")
    if args.out:
        write_json(rows, args.out)
    return 0
