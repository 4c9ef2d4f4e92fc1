"""Time the paired bootstrap on a ground truth of COCO val2017's size (no images needed).

Generates a COCO person-keypoints annotation file (5000 images, about 6000 people, sizes spread
over COCO's medium and large ranges, some unlabelled people) and two results files (the ground
truth with Gaussian keypoint noise, missed people and false positives), evaluates each once with
pycocotools and times ``B`` resamples of the paired bootstrap.
"""
import json
import os
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

from .metrics import REPORTED
from . import bootstrap as bs
from .coco import run_cocoeval

WIDTH, HEIGHT = 640, 480


def make_gt(num_images: int = 5000, num_people: int = 6000, seed: int = 0) -> dict:
    """A COCO person keypoints annotation dict: ``num_people`` people on about half of the
    images (1 to 6 each, as in COCO val2017 where most images have no person)."""
    rng = np.random.default_rng(seed)
    images = [{'id': i + 1, 'file_name': f'{i + 1:012d}.jpg', 'width': WIDTH,
               'height': HEIGHT} for i in range(num_images)]
    owners = rng.choice(num_images, size=num_people, replace=True,
                        p=_person_weights(num_images, rng)) + 1
    annotations = []
    for n, image_id in enumerate(np.sort(owners)):
        side = float(np.exp(rng.uniform(np.log(24), np.log(300))))   # sqrt(area), small..large
        w, h = side * 0.6, side / 0.6
        x, y = rng.uniform(0, WIDTH - min(w, WIDTH - 1)), rng.uniform(0, HEIGHT - min(h, HEIGHT - 1))
        kpts = np.stack([x + rng.uniform(0, w, 17), y + rng.uniform(0, h, 17),
                         rng.choice([0, 1, 2], 17, p=[0.2, 0.1, 0.7])], axis=1)
        if rng.random() < 0.05:                          # an unlabelled person: ignored
            kpts[:, 2] = 0
        kpts[kpts[:, 2] == 0, :2] = 0
        annotations.append({'id': n + 1, 'image_id': int(image_id), 'category_id': 1,
                            'iscrowd': 0, 'area': float(w * h * 0.7),
                            'bbox': [float(x), float(y), float(w), float(h)],
                            'num_keypoints': int(np.count_nonzero(kpts[:, 2])),
                            'keypoints': [round(float(v), 2) for v in kpts.ravel()]})
    return {'images': images, 'annotations': annotations,
            'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person',
                            'keypoints': [f'k{i}' for i in range(17)], 'skeleton': []}]}


def _person_weights(num_images: int, rng: np.random.Generator) -> np.ndarray:
    weights = np.where(rng.random(num_images) < 0.47, rng.uniform(0.5, 3, num_images), 0)
    return weights / weights.sum()


def make_results(gt: dict, noise: float, seed: int = 0, miss: float = 0.05,
                 false_per_image: float = 0.3) -> List[dict]:
    """Keypoint results for ``gt``: each labelled person found with probability ``1 - miss``,
    its keypoints moved by Gaussian noise of ``noise`` x the person's size, a score that falls
    with the error (continuous: no two scores tie); plus on average ``false_per_image`` random false positives per image with
    people."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt['annotations']:
        if ann['num_keypoints'] == 0 or rng.random() < miss:
            continue
        kpts = np.array(ann['keypoints'], float).reshape(17, 3)
        x, y, w, h = ann['bbox']
        hidden = kpts[:, 2] == 0
        kpts[hidden, 0] = x + w / 2
        kpts[hidden, 1] = y + h / 2
        error = noise * rng.lognormal(0, 0.5)
        kpts[:, :2] += rng.normal(0, error * np.sqrt(ann['area']), (17, 2))
        kpts[:, 2] = 1
        out.append({'image_id': ann['image_id'], 'category_id': 1,
                    'keypoints': [round(float(v), 2) for v in kpts.ravel()],
                    'score': float(1 / (1 + np.exp(30 * error - 2 + rng.normal(0, 0.5))))})
    for image_id in sorted({a['image_id'] for a in gt['annotations']}):
        for _ in range(rng.poisson(false_per_image)):
            side = rng.uniform(30, 200)
            x, y = rng.uniform(0, WIDTH - side), rng.uniform(0, HEIGHT - side)
            kpts = np.stack([x + rng.uniform(0, side, 17), y + rng.uniform(0, side, 17),
                             np.ones(17)], axis=1)
            out.append({'image_id': image_id, 'category_id': 1,
                        'keypoints': [round(float(v), 2) for v in kpts.ravel()],
                        'score': float(rng.uniform(0.01, 0.6))})
    return out


def write_inputs(folder: str, num_images: int, num_people: int, seed: int,
                 false_per_image: float = 0.3) -> Tuple[dict, str, List[str]]:
    """The generated ground truth and the baseline's and PSA's results files in ``folder``:
    ``(gt, gt_file, [baseline_file, psa_file])``."""
    gt = make_gt(num_images, num_people, seed)
    gt_file = os.path.join(folder, 'gt.json')
    with open(gt_file, 'w') as f:
        json.dump(gt, f)
    files = []
    for name, noise, s in (('baseline', 0.05, seed + 1), ('psa', 0.048, seed + 2)):
        files.append(os.path.join(folder, f'{name}.json'))
        with open(files[-1], 'w') as f:
            json.dump(make_results(gt, noise, s, false_per_image=false_per_image), f)
    return gt, gt_file, files


def run(num_images: int, num_people: int, resamples: int, seed: int,
        false_per_image: float = 0.3) -> Dict:
    """Generate, evaluate once per model, bootstrap; the timings in seconds and the result."""
    with tempfile.TemporaryDirectory() as tmp:
        gt, gt_file, files = write_inputs(tmp, num_images, num_people, seed, false_per_image)
        t0 = time.perf_counter()
        # make_results misses people on purpose, and so whole images now and then
        evals = [bs.image_eval(run_cocoeval(gt_file, path, partial=True)) for path in files]
        t1 = time.perf_counter()
        boot = bs.paired_bootstrap([[evals[0]], [evals[1]]], resamples, seed=0)
        t2 = time.perf_counter()
    point = {m: evals[1].stats[m] - evals[0].stats[m] for m in REPORTED}
    pair = bs.summarize_pair(boot, 0, 1, point)
    return {'images': num_images, 'people': len(gt['annotations']),
            'detections': [sum(len(g.image) for (k, a), g in ie.groups.items() if a == 0)
                           for ie in evals],
            'resamples': resamples, 'evaluate_s': t1 - t0, 'bootstrap_s': t2 - t1,
            'AP': [ie.stats['AP'] for ie in evals],
            'AP_ci': [bs.model_intervals(boot, i)['AP'] for i in range(2)],
            'delta_AP': point['AP'], 'delta_AP_ci': pair['delta_ci']['AP'],
            'verdict': pair['verdicts']['AP']}
