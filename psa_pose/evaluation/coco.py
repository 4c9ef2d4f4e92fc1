"""COCO keypoint AP with pycocotools' COCOeval (iouType 'keypoints', COCO's 17 OKS sigmas)."""
import contextlib
import io
from typing import Dict, List, Optional

import numpy as np

from .metrics import COCO_STATS
from ..utils import UserError, read_json
from ..data.cocofile import read_coco_keypoints


def _check_results(results, path: str, num_keypoints: int) -> None:
    if not isinstance(results, list) or not results:
        raise UserError(f'{path}: expected a non-empty list of COCO keypoint results '
                        f'(image_id, category_id, keypoints, score)')
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not {'image_id', 'category_id', 'keypoints', 'score'} \
                <= set(r) or not isinstance(r['keypoints'], list):
            raise UserError(f'{path}: result #{i} is not a COCO keypoint result (needs '
                            f'image_id, category_id, keypoints as x,y,v triples, score)')
        if len(r['keypoints']) != 3 * num_keypoints:
            raise UserError(f'{path}: result #{i} has {len(r["keypoints"])} keypoint values, '
                            f'{num_keypoints} keypoints need {3 * num_keypoints}; were the '
                            f'results made by a model of another dataset?')


def read_gt(gt_file: str, num_keypoints: int = 17) -> dict:
    """The checked COCO keypoints annotation file the results are evaluated against."""
    return read_coco_keypoints(gt_file, f'pass the person keypoints annotation file of the split '
                               f'the results were made on', num_keypoints)


def run_cocoeval(gt_file: str, results_file: str, sigmas: Optional[List[float]] = None,
                 gt: Optional[dict] = None):
    """pycocotools' ``COCOeval`` ('keypoints') of a results file, after ``evaluate()`` and
    ``accumulate()``: ``evalImgs`` holds the per-image matching, ``stats`` the metrics.
    ``gt``: the parsed ``gt_file`` when the caller has read it already."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    # COCOeval's own sigmas are those of COCO's 17 keypoints
    num_keypoints = 17 if sigmas is None else len(sigmas)
    if gt is None:
        gt = read_gt(gt_file, num_keypoints)
    results = read_json(results_file, 'a COCO keypoint results file')
    _check_results(results, results_file, num_keypoints)
    known = {im['id'] for im in gt['images']}
    unknown = sorted({r['image_id'] for r in results} - known)
    if unknown:
        raise UserError(f'{results_file}: image_id {unknown[0]} is not in {gt_file}; were the '
                        f'results made on another split?')
    with contextlib.redirect_stdout(io.StringIO()):        # pycocotools prints progress
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, 'keypoints')
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.array(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def stats_of(ev) -> Dict[str, float]:
    """``COCOeval.stats`` by name."""
    return {name: float(v) for name, v in zip(COCO_STATS, ev.stats)}


def evaluate(gt_file: str, results_file: str, sigmas: Optional[List[float]] = None,
             verbose: bool = False) -> Dict[str, float]:
    """COCOeval keypoint metrics of a COCO results file against a COCO annotation file."""
    ev = run_cocoeval(gt_file, results_file, sigmas)
    if verbose:
        ev.summarize()
    return stats_of(ev)


def format_table(metrics: Dict[str, float]) -> str:
    """Metrics as a two-line Markdown table."""
    head = '| ' + ' | '.join(COCO_STATS) + ' |'
    rule = '|' + '---|' * len(COCO_STATS)
    row = '| ' + ' | '.join(f'{metrics[k]:.3f}' for k in COCO_STATS) + ' |'
    return '\n'.join((head, rule, row))
