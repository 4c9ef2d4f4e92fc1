"""COCO keypoint results checked before they are scored.

pycocotools scores whatever it is given: a NaN score, a second copy of every detection, a
``category_id`` the ground truth does not have or results for half of the images all get an AP
(and ``compare_ap.py`` a verdict), and a string score ends in a traceback deep inside
``COCOeval``. :func:`check_results` refuses such a file in one :class:`~psa_pose.utils.UserError`
line naming the file and its first offending entry, before anything is scored; ``eval_coco.py``,
``compare_ap.py`` (through :func:`psa_pose.evaluation.coco.run_cocoeval`) and ``test.py`` call it.
"""
import math
from numbers import Real
from typing import Any, Dict, List, Optional, Set

from ..utils import UserError

REQUIRED = ('image_id', 'category_id', 'keypoints', 'score')
PARTIAL_FLAG = '--partial'


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def person_category_ids(gt: Dict[str, Any]) -> Set[int]:
    """The ids of the ground truth's categories named ``person``."""
    return {c['id'] for c in gt.get('categories', [])
            if isinstance(c, dict) and c.get('name') == 'person' and 'id' in c}


def images_with_people(gt: Dict[str, Any]) -> Set[int]:
    """The images that have a person a keypoint result can match: a non-crowd annotation with
    at least one labelled keypoint (images with only crowds or unlabelled people cannot lose
    AP for lack of a detection)."""
    return {a['image_id'] for a in gt['annotations']
            if not a.get('iscrowd', 0) and a.get('num_keypoints', 1) > 0}


def _entry(i: int, r: Any) -> str:
    """How a line names result ``i``: its index and, where it has one, its image."""
    image = r.get('image_id') if isinstance(r, dict) else None
    return f'result #{i}' + (f' (image_id {image})' if image is not None else '')


def check_results(results: Any, path: str, gt: Dict[str, Any], gt_file: str,
                  num_keypoints: int, partial: bool = False,
                  flag: Optional[str] = PARTIAL_FLAG) -> None:
    """Refuse COCO keypoint results that pycocotools would score wrongly or not at all.

    ``results``: the parsed results file ``path``; ``gt``: the parsed, checked ground truth
    (:func:`psa_pose.data.cocofile.read_coco_keypoints`) read from ``gt_file``. Checked: a non-empty list of objects
    with ``image_id``, ``category_id``, ``keypoints`` and ``score``; every score and keypoint
    value a finite number; ``3 * num_keypoints`` keypoint values; ``category_id`` the ground
    truth's person category; ``image_id`` an image of the ground truth; no exact duplicate of
    an earlier result; and, unless ``partial``, a result on every image with people
    (:func:`images_with_people`). ``flag``: the option that sets ``partial``, for the message
    (None where the caller has none). Raises :class:`UserError` (one line) at the first
    problem.
    """
    if not isinstance(results, list) or not results:
        raise UserError(f'{path}: expected a non-empty list of COCO keypoint results '
                        f'(image_id, category_id, keypoints, score)')
    person = person_category_ids(gt)
    images = {im['id'] for im in gt['images']}
    expected = 3 * num_keypoints
    seen: Dict[tuple, int] = {}
    for i, r in enumerate(results):
        where = f'{path}: {_entry(i, r)}'
        if not isinstance(r, dict) or not set(REQUIRED) <= set(r) or \
                not isinstance(r['keypoints'], list):
            raise UserError(f'{path}: result #{i} is not a COCO keypoint result (needs '
                            f'image_id, category_id, keypoints as x,y,v triples, score)')
        if not _number(r['score']):
            raise UserError(f'{where} has the score {r["score"]!r}, not a number; results must '
                            f'come from a pose model\'s output, scores as numbers')
        if not math.isfinite(r['score']):
            raise UserError(f'{where} has the score {r["score"]}; a NaN or infinite score '
                            f'makes the ranking of detections meaningless; re-run the model '
                            f'(the weights may have diverged)')
        kpts = r['keypoints']
        if len(kpts) != expected:
            raise UserError(f'{where} has {len(kpts)} keypoint values, {num_keypoints} '
                            f'keypoints need {expected}; were the results made by a model of '
                            f'another dataset?')
        bad = next((k for k, v in enumerate(kpts) if not _number(v) or not math.isfinite(v)),
                   None)
        if bad is not None:
            raise UserError(f'{where}: keypoint value #{bad} is {kpts[bad]!r}, not a finite '
                            f'number; re-run the model (the weights may have diverged)')
        if r['category_id'] not in person:
            raise UserError(f'{where} has category_id {r["category_id"]!r}, but the person '
                            f'category of the ground truth is {sorted(person)}; pycocotools '
                            f'would score it as a miss; write person results with category_id '
                            f'{min(person)}')
        if r['image_id'] not in images:
            raise UserError(f'{path}: image_id {r["image_id"]} is not in {gt_file}; were the '
                            f'results made on another split?')
        key = (r['image_id'], r['category_id'], float(r['score']), tuple(map(float, kpts)))
        if key in seen:
            raise UserError(f'{where} is an exact duplicate of result #{seen[key]}; every '
                            f'copy counts as a false positive; write each detection once')
        seen[key] = i
    if not partial:
        _check_coverage(results, path, gt, gt_file, flag)


def _check_coverage(results: List[dict], path: str, gt: Dict[str, Any], gt_file: str,
                    flag: Optional[str]) -> None:
    people = images_with_people(gt)
    missing = sorted(people - {r['image_id'] for r in results})
    if missing:
        how = (f'pass {flag} if the results leave images out on purpose' if flag else
               'make the results on the whole test set')
        raise UserError(f'{path}: no result on {len(missing)} of the {len(people)} images '
                        f'with people in {gt_file} (first: image_id {missing[0]}); their people would '
                        f'count as misses; results of another or a partial split? {how}')
