"""COCO keypoint AP with pycocotools' COCOeval (iouType 'keypoints', COCO's 17 OKS sigmas)."""
import contextlib
import io
from typing import Dict, List, Optional, Tuple

import numpy as np

from .metrics import COCO_STATS
from ..utils import read_json
from ..data.cocofile import read_coco_keypoints
from .results_check import check_results


def read_gt(gt_file: str, num_keypoints: int = 17) -> dict:
    """The checked COCO keypoints annotation file the results are evaluated against."""
    return read_coco_keypoints(gt_file, f'pass the person keypoints annotation file of the split '
                               f'the results were made on', num_keypoints)


def run_cocoeval(gt_file: str, results_file: str, sigmas: Optional[List[float]] = None,
                 gt: Optional[dict] = None, partial: bool = False):
    """pycocotools' ``COCOeval`` ('keypoints') of a results file, after ``evaluate()`` and
    ``accumulate()``: ``evalImgs`` holds the per-image matching, ``stats`` the metrics.
    ``gt``: the parsed ``gt_file`` when the caller has read it already. The results are
    checked first (:func:`~psa_pose.evaluation.results_check.check_results`; ``partial``:
    images with people may have no result)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    # COCOeval's own sigmas are those of COCO's 17 keypoints
    num_keypoints = 17 if sigmas is None else len(sigmas)
    if gt is None:
        gt = read_gt(gt_file, num_keypoints)
    results = read_json(results_file, 'a COCO keypoint results file')
    check_results(results, results_file, gt, gt_file, num_keypoints, partial)
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


def matched_instances(ev, image_id: int, category_id: int) -> Tuple[list, list]:
    """The ground-truth people and the detections ``COCOeval.evaluate()`` compared on one
    image (its protected ``_gts`` / ``_dts``: the one place this project reads them;
    ``tests/evaluation/test_coco.py`` fails loudly when pycocotools moves them)."""
    return ev._gts[image_id, category_id], ev._dts[image_id, category_id]


def stats_of(ev) -> Dict[str, float]:
    """``COCOeval.stats`` by name."""
    return {name: float(v) for name, v in zip(COCO_STATS, ev.stats)}


def evaluate(gt_file: str, results_file: str, sigmas: Optional[List[float]] = None,
             verbose: bool = False, partial: bool = False) -> Dict[str, float]:
    """COCOeval keypoint metrics of a COCO results file against a COCO annotation file
    (``partial``: see :func:`run_cocoeval`)."""
    ev = run_cocoeval(gt_file, results_file, sigmas, partial=partial)
    if verbose:
        ev.summarize()
    return stats_of(ev)


def format_table(metrics: Dict[str, float]) -> str:
    """Metrics as a two-line Markdown table."""
    head = '| ' + ' | '.join(COCO_STATS) + ' |'
    rule = '|' + '---|' * len(COCO_STATS)
    row = '| ' + ' | '.join(f'{metrics[k]:.3f}' for k in COCO_STATS) + ' |'
    return '\n'.join((head, rule, row))
