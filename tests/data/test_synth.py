"""The synthetic COCO person-keypoint generator: schema, determinism, mmpose and pycocotools."""
import copy
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from psa_pose.data import synth
from tests.conftest import REPO

SIZE = (192, 256)  # the generator's default (W, H)
N_TRAIN, N_VAL = 3, 6


def _make(root, seed=7, n_train=N_TRAIN, n_val=N_VAL, **kw):
    synth.generate(root, seed=seed, train_images=n_train, val_images=n_val, image_size=SIZE, **kw)
    return root


def _load(root, split):
    with open(os.path.join(root, 'annotations', f'person_keypoints_{split}.json')) as f:
        return json.load(f)


def _files(root):
    """Relative path -> bytes of every file under root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, 'rb') as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return str(_make(tmp_path_factory.mktemp('synth') / 'coco'))


def test_layout(dataset):
    files = sorted(_files(dataset))
    assert files == sorted(
        ['annotations/person_keypoints_train2017.json',
         'annotations/person_keypoints_val2017.json']
        + [f'train2017/{i:012d}.jpg' for i in range(1, N_TRAIN + 1)]
        + [f'val2017/{1_000_000 + i:012d}.jpg' for i in range(1, N_VAL + 1)])


@pytest.mark.parametrize('split', synth.SPLITS)
def test_coco_schema(dataset, split):
    data = _load(dataset, split)
    assert set(data) == {'info', 'licenses', 'images', 'annotations', 'categories'}
    assert data['categories'] == [synth.category()]
    cat = data['categories'][0]
    assert cat['id'] == 1 and cat['name'] == 'person' and len(cat['keypoints']) == 17
    assert cat['keypoints'][:3] == ['nose', 'left_eye', 'right_eye']
    assert len(cat['skeleton']) == 19 and [16, 14] in cat['skeleton']
    license_ids = {lic['id'] for lic in data['licenses']}

    images = {}
    for img in data['images']:
        assert set(img) == {'license', 'file_name', 'height', 'width', 'id'}
        assert isinstance(img['id'], int) and img['license'] in license_ids
        assert (img['width'], img['height']) == SIZE
        pixels = cv2.imread(os.path.join(dataset, split, img['file_name']))
        assert pixels is not None and pixels.shape == (img['height'], img['width'], 3)
        images[img['id']] = img
    assert len(images) == len(data['images']) == (N_TRAIN if split == 'train2017' else N_VAL)

    ann_ids = set()
    for ann in data['annotations']:
        assert set(ann) == {'segmentation', 'num_keypoints', 'area', 'iscrowd', 'keypoints',
                            'image_id', 'bbox', 'category_id', 'id'}
        assert isinstance(ann['id'], int) and ann['id'] not in ann_ids
        ann_ids.add(ann['id'])
        assert ann['image_id'] in images and ann['category_id'] == 1 and ann['iscrowd'] == 0
        img = images[ann['image_id']]
        w_img, h_img = img['width'], img['height']
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= w_img and y + h <= h_img
        assert 0 < ann['area'] <= w * h
        kpts = np.array(ann['keypoints'], float).reshape(17, 3)
        assert len(ann['keypoints']) == 51
        assert set(kpts[:, 2]) <= {0, 1, 2}
        assert ann['num_keypoints'] == int((kpts[:, 2] > 0).sum()) > 0
        assert (kpts[kpts[:, 2] == 0] == 0).all()  # unlabelled: [0, 0, 0], as in COCO
        lab = kpts[kpts[:, 2] > 0]
        assert (lab[:, 0] >= x).all() and (lab[:, 0] <= x + w).all()
        assert (lab[:, 1] >= y).all() and (lab[:, 1] <= y + h).all()
        assert (lab[:, 0] <= w_img - 1).all() and (lab[:, 1] <= h_img - 1).all()
        assert ann['segmentation'] and all(len(p) >= 6 and len(p) % 2 == 0
                                           for p in ann['segmentation'])
    # 1-3 people per image, every image annotated
    per_image = [sum(a['image_id'] == i for a in data['annotations']) for i in images]
    assert min(per_image) >= 1 and max(per_image) <= synth.MAX_PEOPLE


def test_ids_unique_across_splits(dataset):
    train, val = _load(dataset, 'train2017'), _load(dataset, 'val2017')
    assert not {i['id'] for i in train['images']} & {i['id'] for i in val['images']}
    assert not {a['id'] for a in train['annotations']} & {a['id'] for a in val['annotations']}


def test_annotations_match_pixels():
    """Visible keypoints sit on the figure's joint markers; a figure's silhouette is its box."""
    rng = np.random.default_rng(0)
    img, anns = synth.render_image(rng, *SIZE)
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.dtype == np.uint8
    for ann in anns:
        x, y, w, h = ann['bbox']
        mask = np.zeros(img.shape[:2], np.uint8)
        polys = [np.array(p, np.int32).reshape(-1, 2) for p in ann['segmentation']]
        cv2.fillPoly(mask, polys, 1)
        ys, xs = np.nonzero(mask)
        # the polygon is simplified by at most about a pixel
        assert abs(xs.min() - x) <= 2 and abs(ys.min() - y) <= 2
        assert abs(xs.max() + 1 - (x + w)) <= 2 and abs(ys.max() + 1 - (y + h)) <= 2
        assert abs(mask.sum() - ann['area']) <= 0.1 * ann['area']


def test_statistics_over_many_images():
    """Enough of everything the brief asks for, and figures big enough to learn from."""
    vis, people, heights, facing = [], [], [], []
    for i in range(60):
        _, anns = synth.render_image(np.random.default_rng(i), *SIZE)
        people.append(len(anns))
        for a in anns:
            k = np.array(a['keypoints']).reshape(17, 3)
            vis.append(k[:, 2])
            heights.append(a['bbox'][3] / SIZE[1])
            if k[[3, 4, 5, 6], 2].all():  # head and shoulders in the image
                facing.append((k[:3, 2].any(), k[5, 0] > k[6, 0]))
    vis = np.concatenate(vis)
    assert set(people) == {1, 2, 3}
    assert 0.75 < np.mean(vis == 2) < 0.95
    assert np.mean(vis == 1) > 0.03 and np.mean(vis == 0) > 0.01
    assert np.median(heights) > 0.5
    # Left/right follow the facing, as in real photographs, so that a mirrored image is again
    # a valid image with its labels swapped (what flip augmentation and flip test assume): a
    # figure with a labelled face (seen from the front) has its left shoulder on the image's
    # right; one seen from behind (nose and eyes unlabelled) the other way round.
    assert all(face == left_on_right for face, left_on_right in facing)
    assert 0.05 < 1 - np.mean([f for f, _ in facing]) < 0.3


def test_deterministic(tmp_path):
    a = _files(_make(tmp_path / 'a'))
    b = _files(_make(tmp_path / 'b'))
    assert a == b
    c = _files(_make(tmp_path / 'c', seed=8))
    assert sorted(c) == sorted(a)
    assert all(c[k] != a[k] for k in a)


def test_image_does_not_depend_on_dataset_size(tmp_path):
    small = _files(_make(tmp_path / 's', n_train=1, n_val=1))
    big = _files(_make(tmp_path / 'b', n_train=2, n_val=1))
    for name in ('train2017/000000000001.jpg', 'val2017/000001000001.jpg'):
        assert small[name] == big[name]


def test_mmpose_coco_dataset_loads(dataset):
    from mmpose.datasets import CocoDataset
    ds = CocoDataset(data_root=dataset, ann_file='annotations/person_keypoints_val2017.json',
                     data_prefix=dict(img='val2017/'), pipeline=[], test_mode=False)
    n_anns = len(_load(dataset, 'val2017')['annotations'])
    assert len(ds) == n_anns > 0
    item = ds[0]
    assert item['keypoints'].shape == (1, 17, 2)
    assert item['keypoints_visible'].shape == (1, 17)
    assert item['bbox'].shape == (1, 4)
    assert os.path.isfile(item['img_path'])
    assert item['dataset_name'] == 'coco'


def test_cocoeval_gt_as_predictions_is_perfect(dataset):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(os.path.join(dataset, 'annotations', 'person_keypoints_val2017.json'))
    preds = [{'image_id': a['image_id'], 'category_id': 1, 'keypoints': a['keypoints'],
              'score': 1.0} for a in gt.dataset['annotations']]
    ev = COCOeval(gt, gt.loadRes(copy.deepcopy(preds)), 'keypoints')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == 1.0  # AP
    assert ev.stats[5] == 1.0  # AR
    # and a prediction off by 5 px everywhere is not
    for p in preds:
        k = np.array(p['keypoints'], float).reshape(17, 3)
        k[:, 0] += 5 * (k[:, 2] > 0)
        p['keypoints'] = k.reshape(-1).tolist()
    ev = COCOeval(gt, gt.loadRes(preds), 'keypoints')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] < 0.8


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = synth._write_jpeg

    def flaky(path, img):
        calls.append(path)
        if len(calls) == 4:  # in the val split, after the train JSON is written
            raise OSError('disk full')
        real(path, img)

    monkeypatch.setattr(synth, '_write_jpeg', flaky)
    with pytest.raises(OSError, match='disk full'):
        _make(tmp_path / 'out')
    assert len(calls) == 4
    assert list(tmp_path.iterdir()) == []


def test_existing_output(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    out.mkdir()
    _make(out, n_train=1, n_val=1)  # an empty directory is fine
    before = _files(out)
    with pytest.raises(FileExistsError, match='not empty'):
        _make(out, seed=1, n_train=1, n_val=1)
    assert _files(out) == before

    def broken(path, img):
        raise OSError('disk full')

    with monkeypatch.context() as m:
        m.setattr(synth, '_write_jpeg', broken)
        with pytest.raises(OSError):
            _make(out, seed=1, n_train=1, n_val=1, overwrite=True)
    assert _files(out) == before  # a failed overwrite keeps the old dataset
    _make(out, seed=1, n_train=1, n_val=1, overwrite=True)
    assert _files(out) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']


@pytest.mark.parametrize('kwargs, message', [
    (dict(seed=-1), 'seed'),
    (dict(train_images=0), 'number of train images'),
    (dict(val_images=1_000_000), 'number of val images'),
    (dict(image_size=(32, 256)), 'image size'),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        synth.generate(tmp_path / 'out', **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path, capsys):
    out = tmp_path / 'cli'
    assert synth.main(['--out', str(out), '--seed', '3', '--train-images', '2',
                       '--val-images', '1', '--image-size', '96', '128']) == 0
    err = capsys.readouterr().err
    assert 'train2017: 2/2 images' in err and 'val2017: 1/1 images' in err
    assert _load(out, 'val2017')['images'][0]['width'] == 96
    assert synth.main(['--out', str(out), '--quiet']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('synth: error:') and 'not empty' in err[0]


def test_cli_bad_arguments_as_a_module(tmp_path):
    out = tmp_path / 'cli'
    proc = subprocess.run([sys.executable, '-m', 'psa_pose.data.synth', '--out', str(out),
                           '--image-size', '10', '256'], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        'python -m psa_pose.data.synth: error: the image size (W, H) must have each side in '
        '[64, 4096], got (10, 256)')
    assert not out.exists()


def test_keypoints_are_mmpose_coco_metainfo(tmp_path):
    """The category a generated file declares is the one mmpose's CocoDataset reads: the same
    17 names, skeleton and left/right pairs (so flip augmentation swaps what it should)."""
    from mmpose.datasets import CocoDataset
    meta = CocoDataset._load_metainfo(CocoDataset.METAINFO)
    cat = _load(_make(tmp_path, n_train=1, n_val=1), 'val2017')['categories'][0]
    assert cat['keypoints'] == [meta['keypoint_id2name'][i] for i in range(17)]
    assert [[a - 1, b - 1] for a, b in cat['skeleton']] == [list(map(int, l))
                                                            for l in meta['skeleton_links']]
    assert len(cat['skeleton']) == 19
    pairs = {**dict(zip(synth._LEFT, synth._RIGHT)), **dict(zip(synth._RIGHT, synth._LEFT))}
    assert all(meta['flip_indices'][i] == j for i, j in pairs.items())
    assert sorted(pairs) == list(range(5, 17))
