"""The paired bootstrap against pycocotools: full set, an explicit resample, verdicts."""
import json

import numpy as np
import pytest

from psa_pose.evaluation.metrics import COCO_STATS, REPORTED
from psa_pose.evaluation import bootstrap as bs
from psa_pose.evaluation.bootstrap_benchmark import make_gt, make_results
from psa_pose.evaluation.coco import run_cocoeval, stats_of


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    """A 60-image ground truth with people of all sizes and two noisy models."""
    d = tmp_path_factory.mktemp('boot')
    gt = make_gt(60, 75, seed=3)
    (d / 'gt.json').write_text(json.dumps(gt))
    files = {}
    for name, noise, seed in (('good', 0.04, 1), ('bad', 0.08, 2)):
        files[name] = d / f'{name}.json'
        files[name].write_text(json.dumps(make_results(gt, noise, seed=seed)))
    return d / 'gt.json', files, gt


def test_full_set_equals_pycocotools_exactly(synth):
    gt_file, files, _ = synth
    for path in files.values():
        ev = run_cocoeval(str(gt_file), str(path), partial=True)
        ie = bs.image_eval(ev)
        ours = bs.accumulate(ie, np.ones((1, len(ie.image_ids)), np.int64))
        assert 0.2 < ie.stats['AP'] < 0.9
        assert ie.stats == stats_of(ev)
        for name in COCO_STATS:
            assert ours[name][0] == ie.stats[name], name


def test_one_resample_equals_pycocotools_on_duplicated_images(synth, tmp_path):
    """Draw images with replacement, write the draw out as a new ground truth (each drawn copy
    a new image id) and new results: pycocotools on it equals the weighted accumulation."""
    gt_file, files, gt = synth
    results = json.loads(files['good'].read_text())
    ids = sorted(im['id'] for im in gt['images'])
    draw = np.random.default_rng(5).integers(0, len(ids), len(ids))
    images = {im['id']: im for im in gt['images']}
    new_gt = {'images': [], 'annotations': [], 'categories': gt['categories']}
    new_results = []
    for copy, i in enumerate(draw):
        old, new = ids[i], 10_000 + copy
        new_gt['images'].append({**images[old], 'id': new})
        new_gt['annotations'] += [{**a, 'id': len(new_gt['annotations']) + n + 1,
                                   'image_id': new}
                                  for n, a in enumerate(a for a in gt['annotations']
                                                        if a['image_id'] == old)]
        new_results += [{**r, 'image_id': new} for r in results if r['image_id'] == old]
    (tmp_path / 'gt.json').write_text(json.dumps(new_gt))
    (tmp_path / 'r.json').write_text(json.dumps(new_results))
    assert len(np.unique(draw)) < len(ids)             # some images drawn twice or more
    explicit = stats_of(run_cocoeval(str(tmp_path / 'gt.json'), str(tmp_path / 'r.json'),
                                     partial=True))
    ie = bs.image_eval(run_cocoeval(str(gt_file), str(files['good']), partial=True))
    counts = np.bincount(draw, minlength=len(ids))[None]
    ours = bs.accumulate(ie, counts)
    for name in COCO_STATS:
        assert ours[name][0] == explicit[name], name
    assert explicit['AP'] != ie.stats['AP']


def _pair(synth, a, b, resamples=200):
    gt_file, files, _ = synth
    evals = [bs.image_eval(run_cocoeval(str(gt_file), str(files[n]), partial=True))
             for n in (a, b)]
    boot = bs.paired_bootstrap([[evals[0]], [evals[1]]], resamples, seed=0)
    point = {m: evals[1].stats[m] - evals[0].stats[m] for m in REPORTED}
    return evals, boot, bs.summarize_pair(boot, 0, 1, point)


def test_identical_predictions_no_difference(synth):
    evals, boot, pair = _pair(synth, 'good', 'good')
    for m in REPORTED:
        assert pair['delta'][m] == 0.0
        assert pair['delta_ci'][m] == [0.0, 0.0]
        assert pair['verdicts'][m] == 'no detectable difference'
    low, high = bs.model_intervals(boot, 0)['AP']
    assert low < evals[0].stats['AP'] < high


def test_clearly_worse_predictions(synth):
    evals, _, pair = _pair(synth, 'good', 'bad')
    assert pair['delta']['AP'] == evals[1].stats['AP'] - evals[0].stats['AP'] < -0.1
    assert pair['delta_ci']['AP'][1] < 0 and pair['verdicts']['AP'] == 'worse'
    _, _, reverse = _pair(synth, 'bad', 'good')
    assert reverse['verdicts']['AP'] == 'better'


def test_bootstrap_is_reproducible_and_seed_dependent(synth):
    gt_file, files, _ = synth
    ie = bs.image_eval(run_cocoeval(str(gt_file), str(files['good']), partial=True))
    a = bs.paired_bootstrap([[ie]], 50, seed=1).values[0]['AP']
    b = bs.paired_bootstrap([[ie]], 50, seed=1).values[0]['AP']
    c = bs.paired_bootstrap([[ie]], 50, seed=2).values[0]['AP']
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_interval_and_verdict():
    assert bs.interval(np.arange(1001) / 1000) == pytest.approx([0.025, 0.975], abs=1e-15)
    assert bs.verdict([0.001, 0.2]) == 'better' and bs.verdict([-0.2, -0.01]) == 'worse'
    assert bs.verdict([-0.1, 0.0]) == 'no detectable difference'
    assert bs.seed_stats([0.4, 0.5]) == (0.45, pytest.approx(0.0707106781, abs=1e-9))
    assert bs.seed_stats([0.4]) == (0.4, None)


def test_many_resamples_equal_one_at_a_time(synth):
    """Rows are independent: accumulating 5 count vectors at once equals each alone."""
    gt_file, files, _ = synth
    ie = bs.image_eval(run_cocoeval(str(gt_file), str(files['good']), partial=True))
    counts = bs.resample_counts(len(ie.image_ids), 5, seed=0)
    together = bs.accumulate(ie, counts, chunk_elems=1)
    for b in range(5):
        alone = bs.accumulate(ie, counts[b:b + 1])
        for name in COCO_STATS:
            assert together[name].shape == (5,) and together[name][b] == alone[name][0], name


def test_benchmark_generates_a_coco_sized_problem_small(tmp_path, capsys):
    """The benchmark's generator and timing loop on a small ground truth."""
    from psa_pose.tools.benchmark_bootstrap import main
    gt = make_gt(500, 600, seed=0)
    assert len(gt['images']) == 500 and len(gt['annotations']) == 600
    with_people = {a['image_id'] for a in gt['annotations']}
    assert 150 < len(with_people) < 350                 # most images hold nobody, as in COCO
    assert main(['--images', '200', '--people', '240', '--bootstrap', '20', '--out',
                 str(tmp_path / 'b.json')]) == 0
    r = json.loads((tmp_path / 'b.json').read_text())
    assert (r['images'], r['people'], r['resamples']) == (200, 240, 20)
    assert r['verdict'] in bs.VERDICTS and r['bootstrap_s'] > 0
    assert 'bootstrap B=20 (both models)' in capsys.readouterr().out
