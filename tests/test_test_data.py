"""Where the tests find their data (tests/conftest.py): the real images by one lookup, the
generated ones made once per session."""
import json
import os

import pytest

from tests import conftest


@pytest.mark.parametrize('value,expected', [
    (None, conftest.SHARED_COCO_MINI), ('none', None), ('NONE', None),
    ('/data/mini', '/data/mini')])
def test_the_real_images_are_looked_up_in_one_place(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(conftest.COCO_MINI_VAR, raising=False)
    else:
        monkeypatch.setenv(conftest.COCO_MINI_VAR, value)
    assert conftest.coco_mini_dir() == expected


def test_missing_real_images_say_where_to_get_them(tmp_path):
    how = ('set PSA_POSE_COCO_MINI to a folder with 000000000785.jpg, 000000040083.jpg, '
           '000000196141.jpg, 000000197388.jpg, test_coco.json, test_coco_det_AP_H_56.json '
           "(mmpose's repository has them under tests/data/coco/), or put it at "
           f'{conftest.SHARED_COCO_MINI}')
    assert conftest.coco_mini_missing(None) == \
        f'needs the real COCO images, and PSA_POSE_COCO_MINI=none: {how}'
    assert conftest.coco_mini_missing(str(tmp_path / 'nowhere')) == \
        f'needs the real COCO images: {tmp_path}/nowhere lacks 000000000785.jpg; {how}'
    for name in conftest.COCO_MINI_FILES:
        (tmp_path / name).write_text('')
    assert conftest.coco_mini_missing(str(tmp_path)) is None


def test_the_generated_data_is_twelve_people_with_their_boxes(tiny_coco):
    assert os.environ[conftest.TINY_COCO_VAR] == tiny_coco      # what the tiny configs read
    gt = json.load(open(os.path.join(tiny_coco, 'test_coco.json')))
    assert len(gt['images']) == 6 and len(gt['annotations']) == 12
    assert all(a['num_keypoints'] > 0 for a in gt['annotations'])
    assert all(os.path.isfile(os.path.join(tiny_coco, im['file_name'])) for im in gt['images'])
    dets = json.load(open(os.path.join(tiny_coco, 'test_coco_det.json')))
    assert [(d['image_id'], d['bbox']) for d in dets] == \
        [(a['image_id'], a['bbox']) for a in gt['annotations']]
