"""COCO person keypoints annotation files, read and checked once for every tool.

train/test's preflight and ``eval_coco.py`` both read such a file before long work; a file that
is not one (a detection file, another dataset's keypoints, a truncated download) is refused
here in one :class:`~psa_pose.utils.UserError` line,
``<file>: not COCO keypoints JSON (<what>); <fix>``, where the caller says what to fix.
"""
from collections import Counter
from typing import Any, Dict, Optional

from ..utils import UserError, read_json


def other_categories(data: Dict[str, Any]) -> Counter:
    """``{category name: annotations}`` of the annotations that are not of a category named
    ``person`` in a parsed COCO file."""
    names = {c.get('id'): str(c.get('name')) for c in data['categories'] if isinstance(c, dict)}
    return Counter(names.get(a.get('category_id'), f'id {a.get("category_id")}')
                   for a in data['annotations']
                   if names.get(a.get('category_id')) != 'person')


def read_coco_keypoints(ann_file: str, fix: str, num_keypoints: Optional[int] = None,
                        mixed: bool = False) -> Dict[str, Any]:
    """The parsed ``ann_file``, checked to be COCO person keypoints JSON: ``images`` with id,
    file_name, width and height; a non-empty ``annotations`` list on those images, each with a
    category_id, a bbox of 4 numbers and ``keypoints`` (``3 * num_keypoints`` values when it is
    given); ``categories`` with ``person`` (with ``num_keypoints`` keypoint names when it lists
    them). Annotations of other categories are refused unless ``mixed`` (the caller keeps only
    the person ones); a file with none of category person always is."""

    def bad(what: str) -> UserError:
        return UserError(f'{ann_file}: not COCO keypoints JSON ({what}); {fix}')

    data = read_json(ann_file, 'COCO keypoints', missing=f'{ann_file}: no such annotation file; '
                     f'{fix}', invalid=lambda e: bad(f'not valid JSON: {e}'))
    if not isinstance(data, dict):
        raise bad(f'holds a JSON {type(data).__name__}, not an object')
    for name in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(name), list):
            raise bad(f'no "{name}" list')
    if not data['images']:
        raise bad('no images')
    image_ids = set()
    for i, img in enumerate(data['images']):
        if not isinstance(img, dict) or not {'id', 'file_name', 'width', 'height'} <= set(img):
            raise bad(f'images[{i}] is not an object with id, file_name, width and height')
        image_ids.add(img['id'])
    if not data['annotations']:
        raise UserError(f'{ann_file}: the "annotations" list is empty, so there is no person '
                        f'to train or test on; {fix}, with the annotations')
    expected = None if num_keypoints is None else 3 * num_keypoints
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise bad(f'annotations[{i}] has no image_id')
        if 'category_id' not in ann:
            raise bad(f'annotations[{i}] has no category_id')
        keypoints = ann.get('keypoints')
        if not isinstance(keypoints, list):
            raise bad(f'annotations[{i}] has no "keypoints" list (a detection or caption file?)')
        if expected is not None and len(keypoints) != expected:
            raise bad(f'annotations[{i}] has {len(keypoints)} keypoint values, the dataset\'s '
                      f'{num_keypoints} keypoints need {expected}')
        bbox = ann.get('bbox')
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise bad(f'annotations[{i}] has no bbox of 4 numbers')
        if ann['image_id'] not in image_ids:
            raise bad(f'annotations[{i}] is of image_id {ann["image_id"]!r}, which is not in '
                      f'"images"')
    _check_person(ann_file, data, fix, num_keypoints, mixed)
    return data


def _check_person(ann_file: str, data: Dict[str, Any], fix: str,
                  num_keypoints: Optional[int], mixed: bool) -> None:
    person = [c for c in data['categories'] if isinstance(c, dict) and c.get('name') == 'person']
    others = other_categories(data)
    found = ', '.join(f'{n} of {name}' for name, n in others.most_common(3))
    if not person or sum(others.values()) == len(data['annotations']):
        raise UserError(f'{ann_file}: holds no person annotations ({found}); {fix}: the '
                        f'configs are for COCO person keypoints')
    names = person[0].get('keypoints')
    if num_keypoints is not None and isinstance(names, list) and len(names) != num_keypoints:
        raise UserError(f'{ann_file}: its person category has {len(names)} keypoint names, the '
                        f'dataset expects {num_keypoints}; {fix}')
    if others and not mixed:
        raise UserError(f'{ann_file}: holds {sum(others.values())} annotations of other '
                        f'categories than person ({found}), which the COCO metric would count; '
                        f'{fix}, with only the person annotations')
