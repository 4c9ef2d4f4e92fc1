"""COCO person keypoints annotation files, read and checked once for every tool.

train/test's preflight and ``eval_coco.py`` both read such a file before long work; a file that
is not one (a detection file, another dataset's keypoints, a truncated download) is refused
here in one :class:`~psa_pose.utils.UserError` line,
``<file>: not COCO keypoints JSON (<what>); <fix>``, where the caller says what to fix.
"""
import json
from typing import Any, Dict, Optional

from ..utils import UserError


def read_coco_keypoints(ann_file: str, fix: str,
                        num_keypoints: Optional[int] = None) -> Dict[str, Any]:
    """The parsed ``ann_file``, checked to be COCO keypoints JSON: ``images`` with id,
    file_name, width and height; ``annotations`` on those images, each with a bbox of 4 numbers
    and ``keypoints`` (``3 * num_keypoints`` values when it is given); ``categories``."""

    def bad(what: str) -> UserError:
        return UserError(f'{ann_file}: not COCO keypoints JSON ({what}); {fix}')

    try:
        with open(ann_file) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f'{ann_file}: no such annotation file; {fix}') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f'not valid JSON: {e}') from None
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
    expected = None if num_keypoints is None else 3 * num_keypoints
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise bad(f'annotations[{i}] has no image_id')
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
    return data
