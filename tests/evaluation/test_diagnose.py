"""The diagnosis: error classes injected by construction, oracle APs and AP at strict OKS equal to
pycocotools, identical models give zero deltas, bad input in one line."""
import contextlib
import io
import json
import os
import tempfile

import numpy as np
import pytest

from psa_pose.evaluation import diagnose as dg
from psa_pose.evaluation.bootstrap_benchmark import make_gt, make_results
from psa_pose.tools.compare_ap import main

SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                   .89, .89]) / 10.0            # pycocotools' COCO sigmas
AREA = 10000.0
NAMES, FLIP = dg.coco_keypoints()
K = {n: i for i, n in enumerate(NAMES)}


def _pycocotools_ap(gt: dict, results: list, thr=None) -> float:
    """pycocotools' AP of a results file, read from disk as pycocotools reads it."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        paths = [os.path.join(tmp, name) for name in ('gt.json', 'results.json')]
        for path, data in zip(paths, (gt, results)):
            with open(path, 'w') as f:
                json.dump(data, f)
        truth = COCO(paths[0])
        ev = COCOeval(truth, truth.loadRes(paths[1]), 'keypoints')
        if thr is not None:
            ev.params.iouThrs = np.array([thr])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def _person(x0: float) -> np.ndarray:
    """17 keypoints on a 40 px grid (every pair of keypoints far apart at this area)."""
    k = np.arange(17)
    return np.stack([x0 + 40 * (k % 4), 50 + 40 * (k // 4), np.full(17, 2)], 1).astype(float)


def _shift(k: int, ks: float) -> float:
    """The distance at which keypoint k of a person of AREA has similarity ks."""
    return float(np.sqrt(-2 * np.log(ks) * AREA * (2 * SIGMAS[k]) ** 2))


def _injected():
    """Image 1: people A, B; image 2: people C, D, E (E undetected) and a false positive.
    Returns gt, results, the explicitly corrected results of each class, expected counts."""
    people = {'A': (1, _person(0)), 'B': (1, _person(300)), 'C': (2, _person(0)),
              'D': (2, _person(300)), 'E': (2, _person(600))}
    anns = [{'id': n + 1, 'image_id': img, 'category_id': 1, 'iscrowd': 0, 'area': AREA,
             'bbox': [float(p[:, 0].min()), 50.0, 120.0, 160.0], 'num_keypoints': 17,
             'keypoints': p.ravel().tolist()} for n, (img, p) in enumerate(people.values())]
    gt = {'images': [{'id': i, 'width': 1000, 'height': 400, 'file_name': f'{i}.jpg'}
                     for i in (1, 2)],
          'annotations': anns,
          'categories': [{'id': 1, 'name': 'person', 'keypoints': list(NAMES), 'skeleton': []}]}
    dets = {n: people[n][1][:, :2].copy() for n in 'ABCD'}
    injected = {c: [] for c in dg.CLASSES[1:]}           # (person, keypoint)

    def inject(cls, who, name, xy):
        dets[who][K[name]] = xy
        injected[cls].append((who, name))
    g = {n: p for n, (_, p) in people.items()}
    inject('jitter', 'A', 'nose', g['A'][K['nose'], :2] + [_shift(K['nose'], 0.7), 0])
    inject('inversion', 'A', 'left_wrist', g['A'][K['right_wrist'], :2])
    inject('inversion', 'A', 'right_wrist', g['A'][K['left_wrist'], :2])
    inject('miss', 'A', 'left_ankle', [5000.0, 5000.0])
    inject('swap', 'B', 'left_knee', g['A'][K['left_knee'], :2])          # another person
    inject('jitter', 'C', 'left_shoulder', g['C'][K['left_shoulder'], :2] + [0, _shift(5, .6)])
    inject('jitter', 'C', 'right_hip', g['C'][K['right_hip'], :2] + [_shift(12, .8), 0])
    inject('swap', 'C', 'left_elbow', g['D'][K['right_elbow'], :2])       # another, flipped
    inject('miss', 'D', 'right_ankle', [5000.0, -5000.0])
    # a good keypoint with some noise (ks 0.95 > 0.85)
    dets['D'][K['right_eye']] += [0, _shift(K['right_eye'], 0.95)]
    scores = {'A': 0.9, 'B': 0.8, 'C': 0.7, 'D': 0.6}

    def results(fix=None):
        out = []
        for who, xy in dets.items():
            xy = xy.copy()
            for cls, name_list in injected.items():
                for w, name in name_list:
                    if w == who and cls == fix:
                        xy[K[name]] = g[who][K[name], :2]
            out.append({'image_id': people[who][0], 'category_id': 1, 'score': scores[who],
                        'keypoints': np.concatenate([xy, np.ones((17, 1))], 1).ravel().tolist()})
        far = _person(2000)
        out.append({'image_id': 2, 'category_id': 1, 'score': 0.65,
                    'keypoints': far.ravel().tolist()})
        return out
    expected = {c: len(v) for c, v in injected.items()}
    expected['good'] = 4 * 17 - sum(expected.values())
    return gt, results(), {c: results(c) for c in injected}, injected


@pytest.fixture(scope='module')
def injected():
    gt, res, fixed, inj = _injected()
    return gt, res, fixed, inj, dg.diagnose(gt, res)


def test_error_classes_exact_counts(injected):
    _, _, _, inj, d = injected
    overall = dict(zip(dg.CLASSES, d.errors.sum((0, 1)).tolist()))
    assert overall == {'good': 59, 'jitter': 3, 'inversion': 2, 'swap': 2, 'miss': 2}
    per_kp = d.errors.sum(0)
    for cls, where in inj.items():
        for name in {n for _, n in where}:
            assert per_kp[K[name], dg.CLASSES.index(cls)] == sum(n == name for _, n in where)
    # every other keypoint good: the nose's own flip is no inversion, noise under ks 0.85 is good
    assert per_kp[:, 0].tolist() == [4 - sum(n == name for c in inj for _, n in inj[c])
                                     for name in NAMES]
    # per image: A, B in image 1 (17 + 17), C, D in image 2
    assert d.errors[0].sum() == 34 and d.errors[1].sum() == 34
    assert d.errors[0, K['left_wrist']].tolist() == [1, 0, 1, 0, 0]
    assert d.false_positives.tolist() == [0, 1] and d.false_negatives.tolist() == [0, 1]
    assert d.ks_n.sum() == 68 and d.ks_sum[0, K['nose']] == pytest.approx(1 + 0.7)


def test_corrected_class_ap_equals_pycocotools(injected):
    gt, res, fixed, _, d = injected
    for cls, results in fixed.items():
        assert d.oracle_AP[cls] == _pycocotools_ap(gt, results), cls
    assert all(fixed[c] != res for c in fixed)
    assert len({d.oracle_AP[c] for c in fixed} | {_pycocotools_ap(gt, res)}) > 1
    # rescoring: each detection's score is its best OKS with a person of its image
    rescored = []
    for r in res:
        xy = np.array(r['keypoints']).reshape(17, 3)[:, :2]
        oks = [np.mean(np.exp(-((xy - np.array(a['keypoints']).reshape(17, 3)[:, :2]) ** 2)
                              .sum(1) / (2 * a['area'] * (2 * SIGMAS) ** 2)))
               for a in gt['annotations'] if a['image_id'] == r['image_id']]
        rescored.append(dict(r, score=max(oks) + 1e-9 * r['score']))
    assert d.oracle_AP['score'] == pytest.approx(_pycocotools_ap(gt, rescored), abs=1e-12)


def test_ap_at_equals_pycocotools():
    gt = make_gt(40, 50, seed=7)
    res = make_results(gt, 0.05, seed=2)
    d = dg.diagnose(gt, res)
    for t in dg.THRESHOLDS:
        assert d.AP_at[t] == _pycocotools_ap(gt, res, float(t)), t
    assert d.AP == pytest.approx(_pycocotools_ap(gt, res), abs=1e-12)
    # the AP the MDE is taken from is the AP bootstrap's, resample by resample
    from psa_pose.evaluation import bootstrap as bs
    counts = bs.resample_counts(40, 30, seed=0)
    standard = bs.accumulate(bs.image_eval(dg._cocoeval(gt, res)), counts)['AP']
    np.testing.assert_allclose(dg.values(d, counts)['AP', ''], standard, rtol=0, atol=1e-12)
    full = dg.values(d, np.ones((1, 40), np.int64))
    assert full['AP_at', '0.9'][0] == d.AP_at['0.9']
    assert full['errors', 'good'][0] == d.errors[:, :, 0].sum()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('diag')
    gt = make_gt(50, 60, seed=3)
    (d / 'gt.json').write_text(json.dumps(gt))
    (d / 'a.json').write_text(json.dumps(make_results(gt, 0.05, seed=1)))
    (d / 'b.json').write_text(json.dumps(make_results(gt, 0.04, seed=2)))
    return d


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def test_identical_models_zero_deltas(files, tmp_path, capsys):
    code = main(['--partial', '--gt', str(files / 'gt.json'), '--results', str(files / 'a.json'),
                 str(files / 'a.json'), '--bootstrap', '50', '--diagnose', '--out-dir',
                 str(tmp_path)])
    assert code == 0
    base, other = json.loads((tmp_path / 'compare.json').read_text())
    for key in ('errors', 'AP_at', 'ks_mean_per_keypoint', 'oracle_AP', 'false_positives',
                'false_negatives'):
        assert other[f'delta_{key}'] is not None
        assert all(v == 0 for v in _leaves(other[f'delta_{key}'])), key
        cis = other[f'delta_{key}_ci']
        cis = cis.values() if isinstance(cis, dict) else [cis]
        assert all(ci == [0.0, 0.0] for ci in cis), key
    assert set(_leaves(other['diagnosis_verdicts'])) == {'no detectable difference'}
    assert other['mde_AP'] == 0.0 and other['sign_flip_p'] == 1.0
    assert base['errors'] == other['errors'] and isinstance(base['errors']['good'], int)
    assert set(base['AP_at']) == {'0.5', '0.75', '0.85', '0.9', '0.95'}
    assert set(base['oracle_AP']) == {'jitter', 'inversion', 'swap', 'miss', 'score'}
    assert set(base['errors_per_keypoint']['nose']) == set(dg.CLASSES)
    assert (tmp_path / 'diagnose.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '| AP at OKS 0.9 |' in (tmp_path / 'compare.md').read_text()


def test_diagnose_keys_and_verdicts(files, tmp_path, capsys):
    main(['--partial', '--gt', str(files / 'gt.json'), '--results', str(files / 'a.json'),
          str(files / 'b.json'), '--bootstrap', '100', '--target-delta', '0.001',
          '--out-dir', str(tmp_path)])
    out = capsys.readouterr().out
    base, other = json.loads((tmp_path / 'compare.json').read_text())
    assert other['delta_AP_at']['0.9'] == other['AP_at']['0.9'] - base['AP_at']['0.9']
    assert other['delta_errors']['miss'] == other['errors']['miss'] - base['errors']['miss']
    lo, hi = other['delta_errors_ci']['miss']
    expected = 'better' if hi < 0 else 'worse' if lo > 0 else 'no detectable difference'
    assert other['diagnosis_verdicts']['errors']['miss'] == expected     # fewer misses: better
    assert other['seeds_needed'] is None and 'undetectable at any number of seeds' in out
    assert 'Minimum detectable ΔAP' in out and other['mde_AP'] > 0


def test_diagnose_without_results_files(tmp_path, capsys):
    for name, config in (('base', 'td-hm_res50_8xb64-210e_coco-256x192'),
                         ('psa', 'td-hm_res50-psa-p_8xb64-210e_coco-256x192')):
        (tmp_path / f'{name}.json').write_text(json.dumps({'config': config, 'coco/AP': 0.7}))
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as e:
        main(['--partial', str(tmp_path / 'base.json'), str(tmp_path / 'psa.json'), '--diagnose',
              '--out-dir', str(out)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f'error: {tmp_path / "base.json"}: no COCO results file') and \
        '--diagnose needs them' in err
    assert not out.exists()


def test_experiment_folders_with_seeds(tmp_path, capsys):
    """Experiment folders of 3 seeds per model: the diagnosis is the mean over seeds, the
    sign-flip p is that of the per-seed paired ΔAP, the MDE adds the seed spread."""
    from psa_pose.evaluation import power as pw
    from psa_pose.evaluation.coco import evaluate
    gt = make_gt(16, 20, seed=5)
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    configs = {'baseline': 'td-hm_res50_8xb64-210e_coco-256x192',
               'psa': 'td-hm_res50-psa-p_8xb64-210e_coco-256x192'}
    aps, errors = {}, {}
    for role, noise in (('baseline', 0.05), ('psa', 0.04)):
        for seed in range(3):
            run = tmp_path / role / f'seed-{seed}'
            run.mkdir(parents=True)
            results = make_results(gt, noise, seed=seed + 10 * len(role))
            (run / 'results.json').write_text(json.dumps(results))
            metrics = evaluate(str(tmp_path / 'gt.json'), str(run / 'results.json'))
            aps[role, seed] = metrics['AP']
            errors[role, seed] = dg.diagnose(gt, results).errors.sum((0, 1))
            (run / 'metrics.json').write_text(json.dumps(
                {'config': configs[role], 'seed': seed, 'ann_file': str(tmp_path / 'gt.json'),
                 **{f'coco/{k}': v for k, v in metrics.items()}}))
    main(['--partial', str(tmp_path / 'baseline'), str(tmp_path / 'psa'), '--diagnose',
          '--bootstrap', '100',
          '--target-delta', '0.5', '--out-dir', str(tmp_path / 'out')])
    base, psa = json.loads((tmp_path / 'out' / 'compare.json').read_text())
    per_seed = [aps['psa', s] - aps['baseline', s] for s in range(3)]
    assert psa['sign_flip_p'] == pw.sign_flip_p(per_seed) and psa['sign_flip_min_p'] == 0.25
    assert psa['power']['sd_seeds'] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-15)
    assert psa['mde_AP'] == pytest.approx(pw.min_detectable(pw.standard_error(
        psa['power']['sd_images'], psa['power']['sd_seeds'], 3)))
    assert psa['mde_AP'] > pw.min_detectable(psa['power']['sd_images'])
    assert isinstance(psa['seeds_needed'], int)
    for c, n in zip(dg.CLASSES, range(5)):
        assert base['errors'][c] == pytest.approx(np.mean([errors['baseline', s][n]
                                                           for s in range(3)]))
    assert 'Sign-flip test over the 3 seed pairs' in capsys.readouterr().out


def test_target_delta_zero_refused(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(['--partial', '--gt', str(files / 'gt.json'), '--results', str(files / 'a.json'),
              str(files / 'b.json'), '--target-delta', '0', '--out-dir', str(tmp_path / 'o')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith('error: --target-delta 0.0: needs')
    assert not (tmp_path / 'o').exists()


def test_no_bootstrap(files, tmp_path, capsys):
    main(['--partial', '--gt', str(files / 'gt.json'), '--results', str(files / 'a.json'),
          str(files / 'b.json'), '--bootstrap', '0', '--diagnose', '--out-dir', str(tmp_path)])
    base, other = json.loads((tmp_path / 'compare.json').read_text())
    assert other['delta_errors_ci'] is None and other['mde_AP'] is None
    assert other['delta_errors']['good'] == other['errors']['good'] - base['errors']['good']
    assert (tmp_path / 'diagnose.png').exists()


def test_real_coco_ground_truth_as_results(mini_coco):
    """The 4 real COCO images: the ground truth fed back is all good with AP 1.0 everywhere;
    every person left/right-flipped is inversions (where the twin is labelled) and noses."""
    with open(os.path.join(mini_coco, 'test_coco.json')) as f:
        gt = json.load(f)
    people = [a for a in gt['annotations'] if a['num_keypoints'] > 0 and not a['iscrowd']]
    res = [{'image_id': a['image_id'], 'category_id': 1, 'keypoints': a['keypoints'],
            'score': 1 - 0.01 * i} for i, a in enumerate(people)]
    d = dg.diagnose(gt, res)
    visible = sum(a['num_keypoints'] for a in people)
    assert dict(zip(dg.CLASSES, d.errors.sum((0, 1)).tolist())) == {
        'good': visible, 'jitter': 0, 'inversion': 0, 'swap': 0, 'miss': 0}
    assert set(d.AP_at.values()) == {1.0} and set(d.oracle_AP.values()) == {1.0}
    assert d.false_positives.sum() == d.false_negatives.sum() == 0
    flipped = [dict(r, keypoints=np.array(r['keypoints']).reshape(17, 3)[list(FLIP)]
                    .ravel().tolist()) for r in res]
    f = dg.diagnose(gt, flipped).errors.sum(0)                  # (K, 5)
    assert f[:, [1, 3]].sum() == 0 and f[K['nose'], 2] == 0
    assert f[:, 2].sum() > 0.7 * f.sum() and f[1:, 0].sum() == 0   # only noses stay good


def test_benchmark_diagnose_small(tmp_path, capsys):
    """benchmark_bootstrap.py --diagnose on a small generated ground truth."""
    from psa_pose.tools.benchmark_bootstrap import main as benchmark
    assert benchmark(['--diagnose', '--images', '100', '--people', '120', '--bootstrap', '20',
                      '--out', str(tmp_path / 'b.json')]) == 0
    r = json.loads((tmp_path / 'b.json').read_text())
    assert (r['images'], r['people'], r['resamples']) == (100, 120, 20)
    assert r['diagnose_s'] > 0 and r['diagnose_cpu_s'] > 0 and r['peak_rss_mib'] > 0
    out = capsys.readouterr().out
    assert 'diagnosis (6 pycocotools runs per model + B=20)' in out and 'psa - baseline' in out
