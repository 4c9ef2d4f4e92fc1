"""COCO keypoint evaluation by other libraries than pycocotools: timed, and compared number by
number with pycocotools on generated sets (:mod:`.bootstrap_benchmark`'s generator).

pycocotools is what :mod:`.coco` and :mod:`.bootstrap` use and the reference here;
xtcocotools is mmpose's CocoMetric; faster-coco-eval and hotcoco are pycocotools-compatible
rewrites (C++, Rust). Two things are compared: the 10 ``stats`` after ``summarize()``
(``eval_coco.py``'s numbers) and the per-image matching after ``evaluate()`` (``evalImgs``,
what the bootstrap starts from).
"""
import contextlib
import io
import json
import os
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .bootstrap_benchmark import make_gt, make_results

BACKENDS = ('pycocotools', 'xtcocotools', 'faster-coco-eval', 'hotcoco')
_MATCH_KEYS = ('dtIds', 'gtIds', 'dtMatches', 'gtMatches', 'dtScores', 'gtIgnore', 'dtIgnore')


def _classes(backend: str):
    if backend == 'pycocotools':
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif backend == 'xtcocotools':
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    elif backend == 'faster-coco-eval':
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    elif backend == 'hotcoco':
        from hotcoco import COCO, COCOeval
    else:
        raise ValueError(f'unknown backend {backend!r}; one of {BACKENDS}')
    return COCO, COCOeval


def available(backend: str) -> Optional[str]:
    """None when ``backend`` imports, else why not (one line)."""
    try:
        _classes(backend)
    except ImportError as e:
        return f'{backend} is not installed ({e})'
    return None


def run(backend: str, gt_file: str, results_file: str) -> Dict:
    """Evaluate with ``backend``: its stats, its per-image matches by (image id, area range)
    (None where the library does not expose them) and the seconds each step took."""
    COCO, COCOeval = _classes(backend)
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        gt = COCO(gt_file)
        ev = COCOeval(gt, gt.loadRes(results_file), 'keypoints')
        times['load_s'] = time.perf_counter() - start
        start = time.perf_counter()
        ev.evaluate()
        times['evaluate_s'] = time.perf_counter() - start
        start = time.perf_counter()
        ev.accumulate()
        ev.summarize()
        times['summarize_s'] = time.perf_counter() - start
        # hotcoco builds its Python evalImgs list only when asked
        start = time.perf_counter()
        entries = getattr(ev, 'evalImgs', None) or None
        times['per_image_s'] = time.perf_counter() - start
    per_image = None if entries is None else {
        (int(e['image_id']), tuple(e['aRng'])): e for e in entries if e is not None}
    return {'stats': [float(v) for v in ev.stats[:10]], 'per_image': per_image, **times}


def same_matches(a: Dict, b: Dict) -> bool:
    """Whether two per-image evaluations (:func:`run`'s ``per_image``) are identical."""
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k][f], float), np.asarray(b[k][f], float))
               for k in a for f in _MATCH_KEYS)


def compare(num_images: int, num_people: int, seeds: Sequence[int],
            backends: Sequence[str] = BACKENDS, noise: float = 0.05,
            false_per_image: float = 0.3) -> List[Dict]:
    """One row per (seed, backend): times, and whether its stats and per-image matches are
    bit-identical to pycocotools' on the generated set of that seed."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            gt = make_gt(num_images, num_people, seed)
            gt_file, results_file = os.path.join(tmp, 'gt.json'), os.path.join(tmp, 'r.json')
            with open(gt_file, 'w') as f:
                json.dump(gt, f)
            with open(results_file, 'w') as f:
                json.dump(make_results(gt, noise, seed + 1, false_per_image=false_per_image), f)
            ref = run('pycocotools', gt_file, results_file)
            for backend in backends:
                r = ref if backend == 'pycocotools' else run(backend, gt_file, results_file)
                rows.append({
                    'seed': seed, 'backend': backend, 'AP': r['stats'][0],
                    'load_s': r['load_s'], 'evaluate_s': r['evaluate_s'],
                    'summarize_s': r['summarize_s'], 'per_image_s': r['per_image_s'],
                    'stats_identical': r['stats'] == ref['stats'],
                    'per_image_identical': None if r['per_image'] is None
                    else same_matches(r['per_image'], ref['per_image'])})
    return rows
