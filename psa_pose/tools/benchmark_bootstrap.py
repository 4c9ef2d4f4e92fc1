"""``scripts/benchmark_bootstrap.py``: time the paired bootstrap on a ground truth of COCO
val2017's size (see :mod:`psa_pose.evaluation.bootstrap_benchmark`)."""
import argparse
import os
from typing import List, Optional

from ..evaluation.bootstrap_benchmark import __doc__ as DOC
from ..evaluation.bootstrap_benchmark import run
from ..utils import write_json


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--people', type=int, default=6000)
    parser.add_argument('--bootstrap', type=int, default=1000, help='resamples B')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--false-per-image', type=float, default=0.3,
                        help='mean false positives per image with people')
    parser.add_argument('--out', help='write the timings here as JSON')
    parser.add_argument('--diagnose', action='store_true',
                        help='time compare_ap.py --diagnose instead (docs/diagnosis.md)')
    args = parser.parse_args(argv)
    if args.diagnose:
        return _diagnose(args)
    print(f'generating {args.images} images, {args.people} people; evaluating 2 results '
          f'files once each, then {args.bootstrap} paired resamples ...', flush=True)
    r = run(args.images, args.people, args.bootstrap, args.seed, args.false_per_image)
    print(f"{r['people']} people, {r['detections']} detections (baseline, PSA)")
    print(f"evaluate (pycocotools, once per model): {r['evaluate_s']:.1f} s")
    print(f"bootstrap B={r['resamples']} (both models): {r['bootstrap_s']:.1f} s")
    ci = [f'[{lo:.3f}, {hi:.3f}]' for lo, hi in r['AP_ci']]
    lo, hi = r['delta_AP_ci']
    print(f"AP baseline {r['AP'][0]:.3f} {ci[0]}, PSA {r['AP'][1]:.3f} {ci[1]}; "
          f"ΔAP {r['delta_AP']:+.4f} [{lo:+.4f}, {hi:+.4f}]: {r['verdict']}")
    if args.out:
        write_json(r, args.out)
    return 0


def _diagnose(args) -> int:
    from ..evaluation.diagnose_benchmark import run as run_diagnosis
    print(f'generating {args.images} images, {args.people} people; diagnosing 2 results files, '
          f'{args.bootstrap} paired resamples ...', flush=True)
    r = run_diagnosis(args.images, args.people, args.bootstrap, args.seed, args.false_per_image)
    print(r.pop('compact'))
    print(f"AP (pycocotools once per model): {r['evaluate_s']:.1f} s")
    print(f"diagnosis (6 pycocotools runs per model + B={r['resamples']}): "
          f"{r['diagnose_s']:.1f} s wall, {r['diagnose_cpu_s']:.1f} s CPU of this process "
          f"(load average {r['load_1min']:.1f} on {os.cpu_count()} cores); peak memory "
          f"{r['peak_rss_mib']:.0f} MiB")
    if args.out:
        write_json(r, args.out)
    return 0
