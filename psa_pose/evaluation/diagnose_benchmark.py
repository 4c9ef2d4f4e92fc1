"""Time the diagnosis of ``compare_ap.py --diagnose`` for two models on a ground truth of COCO
val2017's size (the generated one of :mod:`psa_pose.evaluation.bootstrap_benchmark`): 6
pycocotools evaluations per model (strict thresholds with the OKS-0.1 matching, 4 corrected
files, 1 rescored), the per-image classes, and B resamples re-accumulated. The comparison's own
AP bootstrap is timed by the plain benchmark."""
import os
import resource
import tempfile
import time
from typing import Dict

from . import diagnose as dg
from .coco import evaluate
from .bootstrap_benchmark import write_inputs


def run(num_images: int, num_people: int, resamples: int, seed: int,
        false_per_image: float = 0.3) -> Dict:
    """Generate, compare, diagnose; the timings in seconds, the peak memory and the result."""
    with tempfile.TemporaryDirectory() as tmp:
        gt, gt_file, files = write_inputs(tmp, num_images, num_people, seed, false_per_image)
        names = ('baseline', 'psa')
        rows = [{'config': n, 'baseline': names[0]} for n in names]
        t0 = time.perf_counter()
        # the generated results miss some images on purpose (missed people)
        runs = [{'config': n, 'seed': 0, 'source': f, 'results': f, 'gt': gt_file,
                 'partial': True, 'metrics': evaluate(gt_file, f, partial=True)}
                for n, f in zip(names, files)]
        t1, c1 = time.perf_counter(), time.process_time()
        diag = dg.add_diagnosis(rows, runs, resamples, 0)
        t2, c2 = time.perf_counter(), time.process_time()
    merged = [dict(r, **d) for r, d in zip(rows, diag)]
    # ru_maxrss: kilobytes on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {'images': num_images, 'people': len(gt['annotations']), 'resamples': resamples,
            'evaluate_s': t1 - t0, 'diagnose_s': t2 - t1, 'diagnose_cpu_s': c2 - c1,
            'load_1min': os.getloadavg()[0], 'peak_rss_mib': peak,
            'compact': dg.compact(merged)}
