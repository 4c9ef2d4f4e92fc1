"""``scripts/compare_ap.py``: compare PSA runs with their baselines (see
:mod:`psa_pose.evaluation.compare`)."""
import argparse
import os.path as osp
from typing import List, Optional

from ..evaluation import compare as cmp
from ..evaluation import diagnose as dg
from ..utils import UserError, one_line_errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=cmp.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='*', help='experiment folders, metrics JSONs or '
                        'mmengine scalars.json logs')
    parser.add_argument('--gt', help='COCO keypoints annotation file of --results')
    parser.add_argument('--results', nargs='+', metavar='JSON',
                        help='COCO results files on --gt, the baseline first')
    parser.add_argument('--bootstrap', type=int, default=1000, metavar='B',
                        help='bootstrap resamples (0: no intervals)')
    parser.add_argument('--bootstrap-seed', type=int, default=0)
    parser.add_argument('--out-dir', help='write compare.{md,csv,json,png} here')
    parser.add_argument('--diagnose', action='store_true',
                        help='where the models differ: keypoint error classes, AP at strict OKS, '
                        'per-joint ks, oracle APs, minimum detectable ΔAP (docs/diagnosis.md); '
                        'needs COCO results files; writes diagnose.png')
    parser.add_argument('--target-delta', type=float, metavar='D',
                        help='with --diagnose (implied): seeds per model a true ΔAP of D needs')
    parser.add_argument('--partial', action='store_true',
                        help='the results leave images with people out on purpose (else '
                        'such results are refused)')
    args = parser.parse_args(argv)
    with one_line_errors():
        if args.bootstrap < 0:
            raise UserError(f'--bootstrap {args.bootstrap}: needs 0 (no intervals) or more')
        if bool(args.gt) != bool(args.results) or (args.results and args.runs):
            raise UserError('pass either runs (experiment folders, metrics JSONs, logs) or '
                            '--gt ANN.json --results BASELINE.json OTHER.json')
        if args.results:
            if not osp.isfile(args.gt):
                raise UserError(f'{args.gt}: no such annotation file (--gt)')
            runs, by_name = cmp.runs_from_results(args.gt, args.results, args.partial), False
        elif args.runs:
            runs, by_name = [r for p in args.runs for r in cmp.load_runs(p)], True
            for r in runs:
                r['partial'] = r['partial'] or args.partial
        else:
            raise UserError('nothing to compare; pass runs or --gt/--results')
        diagnose = args.diagnose or args.target_delta is not None
        if diagnose:
            dg.check_runs(runs, args.target_delta)
        if args.out_dir:
            cmp.check_out_dir(args.out_dir, runs)
        rows = cmp.compare(runs, args.bootstrap, args.bootstrap_seed, by_name, progress=True)
        diag = dg.add_diagnosis(rows, runs, args.bootstrap, args.bootstrap_seed,
                                args.target_delta, progress=True) if diagnose else None
        print(cmp.markdown(rows))
        print()
        print(cmp.explain(rows))
        if diag:
            print('\n' + dg.compact([dict(r, **d) for r, d in zip(rows, diag)]))
        if args.out_dir:
            paths = cmp.write_outputs(rows, args.out_dir)
            if diag:
                paths.update(dg.write_outputs(rows, diag, args.out_dir))
            for path in dict.fromkeys(paths.values()):
                print(f'wrote {path}')
    return 0
