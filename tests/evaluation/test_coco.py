"""COCO keypoint AP with pycocotools, against mmpose's xtcocotools evaluation."""
import json

import numpy as np
import pytest

from psa_pose.utils import UserError
from psa_pose.evaluation.metrics import COCO_STATS, normalize_metrics
from psa_pose.evaluation.coco import evaluate
from psa_pose.tools.eval_coco import main


def _gt(tiny_coco):
    return f'{tiny_coco}/test_coco.json'


def _results(gt_file, noise, seed=0):
    rng = np.random.default_rng(seed)
    with open(gt_file) as f:
        gt = json.load(f)
    out = []
    for ann in gt['annotations']:
        if ann['num_keypoints'] == 0:
            continue
        kpts = np.array(ann['keypoints'], dtype=float).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0, noise, (len(kpts), 2)) if noise else 0
        kpts[:, 2] = 1
        out.append(dict(image_id=ann['image_id'], category_id=1,
                        keypoints=kpts.ravel().tolist(),
                        score=float(rng.uniform(0.5, 1.0)) if noise else 1.0))
    return out


def test_ground_truth_as_predictions_gives_ap_1(tiny_coco, tmp_path):
    path = tmp_path / 'gt_as_results.json'
    path.write_text(json.dumps(_results(_gt(tiny_coco), noise=0)))
    metrics = evaluate(_gt(tiny_coco), str(path))
    assert metrics['AP'] == 1.0 and metrics['AR'] == 1.0 and metrics['AP50'] == 1.0


def test_pycocotools_equals_mmpose_xtcocotools(tiny_coco, tmp_path):
    """The same predictions through xtcocotools' COCOeval as mmpose's CocoMetric runs it."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    results = _results(_gt(tiny_coco), noise=4.0)
    path = tmp_path / 'noisy.json'
    path.write_text(json.dumps(results))
    ours = evaluate(_gt(tiny_coco), str(path))
    coco = COCO(_gt(tiny_coco))
    ev = COCOeval(coco, coco.loadRes(str(path)), 'keypoints', sigmas=np.array(
        [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89])
        / 10.0, use_area=True)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    theirs = dict(zip(COCO_STATS, ev.stats))
    assert 0.1 < ours['AP'] < 1.0
    for k in COCO_STATS:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-12), k


def test_cli_writes_metrics(tiny_coco, tmp_path, capsys):
    res = tmp_path / 'r.json'
    res.write_text(json.dumps(_results(_gt(tiny_coco), noise=0)))
    out = tmp_path / 'm.json'
    assert main(['--gt', _gt(tiny_coco), '--results', str(res), '--out', str(out)]) == 0
    assert json.loads(out.read_text())['AP'] == 1.0
    assert '| 1.000 |' in capsys.readouterr().out


@pytest.mark.parametrize('content,message', [
    ('[]', 'expected a non-empty list of COCO keypoint results'),
    ('{"a": 1', 'not valid JSON'),
    ('[{"image_id": 1}]', 'result #0 is not a COCO keypoint result'),
    ('[{"image_id": 785, "category_id": 1, "keypoints": [1, 2, 2], "score": 1}]',
     'result #0 (image_id 785) has 3 keypoint values, 17 keypoints need 51; were the results made by a model '
     'of another dataset?'),
    (json.dumps([{'image_id': 7, 'category_id': 1, 'keypoints': [1, 2, 2] * 17, 'score': 1}]),
     'image_id 7 is not in'),
])
def test_bad_results_get_one_line(tiny_coco, tmp_path, content, message):
    bad = tmp_path / 'bad.json'
    bad.write_text(content)
    with pytest.raises(UserError) as err:
        evaluate(_gt(tiny_coco), str(bad))
    assert str(bad) in str(err.value) and message in str(err.value)
    assert '\n' not in str(err.value)


def test_missing_file_exits_2_without_output(tiny_coco, tmp_path, capsys):
    out = tmp_path / 'm.json'
    with pytest.raises(SystemExit) as exc:
        main(['--gt', _gt(tiny_coco), '--results', str(tmp_path / 'nope.json'), '--out',
              str(out)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == \
        f'error: {tmp_path}/nope.json: no such file (a COCO keypoint results file)'
    assert not out.exists()


def _fewer_keypoints(gt):
    for ann in gt['annotations']:
        ann['keypoints'] = ann['keypoints'][:42]       # 14 keypoints, as CrowdPose has
    return gt


@pytest.mark.parametrize('make,problem', [
    (None, 'no such annotation file'),
    (lambda gt: gt['annotations'], 'not COCO keypoints JSON (holds a JSON list, not an object)'),
    (_fewer_keypoints, "not COCO keypoints JSON (annotations[0] has 42 keypoint values, the "
                       "dataset's 17 keypoints need 51)"),
])
def test_bad_annotation_file_exits_2_without_output(tiny_coco, tmp_path, capsys, make, problem):
    """The same schema check as train/test's preflight (psa_pose.data.cocofile)."""
    res = tmp_path / 'results.json'
    res.write_text(json.dumps(_results(_gt(tiny_coco), noise=0)))
    gt = tmp_path / 'gt.json'
    if make is not None:
        with open(_gt(tiny_coco)) as f:
            gt.write_text(json.dumps(make(json.load(f))))
    out = tmp_path / 'm.json'
    with pytest.raises(SystemExit) as exc:
        main(['--gt', str(gt), '--results', str(res), '--out', str(out)])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        f'error: {gt}: {problem}; pass the person keypoints annotation file of the split the '
        f'results were made on\n')
    assert not out.exists()


def test_normalize_mmpose_names():
    assert normalize_metrics({'coco/AP': 0.5, 'coco/AP .5': 0.9, 'coco/AR (L)': 0.3,
                              'other': 1}) == {'AP': 0.5, 'AP50': 0.9, 'ARL': 0.3}


def test_matched_instances_reads_cocoevals_own_lists(tiny_coco, tmp_path):
    """matched_instances is the one reader of COCOeval's protected _gts/_dts: per image, the
    annotated people and the results it compared (fails loudly if pycocotools moves them)."""
    from psa_pose.evaluation.coco import matched_instances, run_cocoeval
    path = tmp_path / 'gt_as_results.json'
    results = _results(_gt(tiny_coco), noise=0)
    path.write_text(json.dumps(results))
    ev = run_cocoeval(_gt(tiny_coco), str(path))
    with open(_gt(tiny_coco)) as f:
        gt = json.load(f)
    for image in gt['images']:
        gts, dts = matched_instances(ev, image['id'], 1)
        assert [g['id'] for g in gts] == [a['id'] for a in gt['annotations']
                                          if a['image_id'] == image['id']]
        assert len(dts) == sum(r['image_id'] == image['id'] for r in results)
