"""compare_ap.py: intervals and verdicts from COCO results, seeds, and bad input in one line."""
import csv
import json
import math

import numpy as np
import pytest

from psa_pose.evaluation.bootstrap_benchmark import make_gt, make_results
from psa_pose.tools.compare_ap import main
from psa_pose.evaluation.coco import evaluate

BASE = 'td-hm_res50_8xb64-210e_coco-256x192'
PSA = 'td-hm_res50-psa-p_8xb64-210e_coco-256x192'
CH = 'td-hm_res50-psa-ch_8xb64-210e_coco-256x192'


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('cmp')
    gt = make_gt(60, 75, seed=3)
    (d / 'gt.json').write_text(json.dumps(gt))
    for name, noise, seed in (('good', 0.04, 1), ('good2', 0.04, 4), ('bad', 0.08, 2),
                              ('bad2', 0.08, 5)):
        (d / f'{name}.json').write_text(json.dumps(make_results(gt, noise, seed=seed)))
    return d


def _run(capsys, *args):
    # make_results misses people, and so now and then a whole image: partial on purpose
    code = main([str(a) for a in args] + ['--partial'])
    return code, capsys.readouterr()


def test_results_files_directly(files, tmp_path, capsys):
    code, out = _run(capsys, '--gt', files / 'gt.json', '--results', files / 'good.json',
                     files / 'bad.json', '--bootstrap', 200, '--out-dir', tmp_path)
    assert code == 0
    base, other = json.loads((tmp_path / 'compare.json').read_text())
    good = evaluate(str(files / 'gt.json'), str(files / 'good.json'), partial=True)
    bad = evaluate(str(files / 'gt.json'), str(files / 'bad.json'), partial=True)
    assert base['AP'] == good['AP'] and other['AP'] == bad['AP']
    assert other['delta_AP'] == bad['AP'] - good['AP']            # exactly pycocotools'
    assert other['verdict'] == 'worse' and other['delta_AP_ci'][1] < 0
    assert base['AP_ci'][0] < base['AP'] < base['AP_ci'][1]
    assert set(other['verdicts']) == {'AP', 'AP50', 'AP75', 'APM', 'APL', 'AR'}
    assert base['delta_AP'] is None and base['verdict'] is None
    assert (other['psa'], other['bootstrap']) == ('vs baseline', {'resamples': 200, 'seed': 0,
                                                                  'images': 60, 'level': 0.95})
    md = (tmp_path / 'compare.md').read_text()
    assert '| ΔAP 95% CI | verdict |' in md and '| worse |' in md and md in out.out + '\n'
    [_, row] = list(csv.DictReader(open(tmp_path / 'compare.csv')))
    assert float(row['delta_AP_ci_high']) == other['delta_AP_ci'][1]
    assert row['verdict'] == 'worse' and row['verdict_AP'] == 'worse' and float(row['AP50_ci_low']) == other['ci']['AP50'][0]
    assert (tmp_path / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_identical_results_no_detectable_difference(files, tmp_path, capsys):
    code, _ = _run(capsys, '--gt', files / 'gt.json', '--results', files / 'good.json',
                   files / 'good.json', '--bootstrap', 100, '--out-dir', tmp_path)
    _, other = json.loads((tmp_path / 'compare.json').read_text())
    assert other['delta_AP'] == 0.0 and other['delta_AP_ci'] == [0.0, 0.0]
    assert other['verdict'] == 'no detectable difference'


def _experiment(root, gt, layout):
    """``layout``: {role: (config, {seed: (results file or None, metrics or None)})}."""
    for role, (config, seeds) in layout.items():
        for seed, (results, metrics) in seeds.items():
            run = root / role / f'seed-{seed}'
            run.mkdir(parents=True)
            data = {'config': config, 'seed': seed, 'ann_file': str(gt) if results else None}
            if results:
                (run / 'results.json').write_text(results.read_text())
                metrics = evaluate(str(gt), str(results), partial=True)
            data.update({f'coco/{k}': v for k, v in metrics.items()})
            (run / 'metrics.json').write_text(json.dumps(data))
    return root


def test_seeds_hand_made_metrics(tmp_path, capsys):
    exp = _experiment(tmp_path / 'exp', None, {
        'baseline': (BASE, {0: (None, {'AP': 0.70, 'AR': 0.75}), 1: (None, {'AP': 0.72,
                                                                            'AR': 0.77})}),
        'psa': (PSA, {0: (None, {'AP': 0.71, 'AR': 0.76}), 1: (None, {'AP': 0.75, 'AR': 0.78})}),
    })
    code, out = _run(capsys, exp / 'baseline', exp / 'psa', '--out-dir', tmp_path / 'o')
    base, psa = json.loads((tmp_path / 'o' / 'compare.json').read_text())
    assert base['seeds'] == psa['seeds'] == [0, 1]
    assert base['AP'] == pytest.approx(0.71) and psa['AP'] == pytest.approx(0.73)
    assert base['AP_std'] == pytest.approx(math.sqrt(2) * 0.01)
    assert psa['delta_AP'] == pytest.approx(0.02)                # (0.01 + 0.03) / 2
    assert psa['delta_AP_std'] == pytest.approx(math.sqrt(2) * 0.01)
    assert psa['delta_AP_ci'] is None and psa['verdict'] is None     # no results files
    assert '0.730 ± 0.028' in out.out and '+0.020 ± 0.014' in out.out
    assert 'No intervals' in out.out


def test_seeds_pooled_bootstrap(files, tmp_path, capsys):
    gt = files / 'gt.json'
    exp = _experiment(tmp_path / 'exp', gt, {
        'baseline': (BASE, {0: (files / 'good.json', None), 1: (files / 'good2.json', None)}),
        'psa': (PSA, {0: (files / 'bad.json', None), 1: (files / 'bad2.json', None)}),
        'psa-ch': (CH, {0: (files / 'good2.json', None), 1: (files / 'good.json', None)}),
    })
    code, _ = _run(capsys, exp / 'baseline', exp / 'psa', exp / 'psa-ch', '--bootstrap', 200,
                   '--out-dir', tmp_path / 'o')
    base, psa, ch = json.loads((tmp_path / 'o' / 'compare.json').read_text())
    ap = {n: evaluate(str(gt), str(files / f'{n}.json'), partial=True)['AP']
          for n in ('good', 'good2', 'bad', 'bad2')}
    assert base['AP'] == pytest.approx((ap['good'] + ap['good2']) / 2, abs=1e-15)
    assert psa['delta_AP'] == pytest.approx(np.mean([ap['bad'] - ap['good'],
                                                     ap['bad2'] - ap['good2']]), abs=1e-15)
    assert psa['verdict'] == 'worse' and len(psa['delta_AP_ci']) == 2
    # the ablation swaps the baseline's two seeds: same mean, a zero-centred interval
    assert (ch['psa'], ch['baseline']) == ('ch (paper)', BASE)
    assert ch['delta_AP'] == pytest.approx(0, abs=1e-15) and ch['verdict'] == \
        'no detectable difference'


def _one_line_error(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
    return err


def test_bad_inputs(files, tmp_path, capsys):
    gt = files / 'gt.json'
    (tmp_path / 'empty.json').write_text('[]')
    err = _one_line_error(capsys, '--gt', gt, '--results', files / 'good.json',
                          tmp_path / 'empty.json', '--out-dir', tmp_path / 'o')
    assert f'{tmp_path}/empty.json: expected a non-empty list' in err
    alien = json.loads((files / 'good.json').read_text())
    alien[0]['image_id'] = 999_999
    (tmp_path / 'alien.json').write_text(json.dumps(alien))
    err = _one_line_error(capsys, '--gt', gt, '--results', files / 'good.json',
                          tmp_path / 'alien.json', '--out-dir', tmp_path / 'o')
    assert f'alien.json: image_id 999999 is not in {gt}' in err
    # two runs scored on different ground truths
    other_gt = tmp_path / 'gt2.json'
    other_gt.write_text(json.dumps(make_gt(60, 75, seed=9)))
    exp = _experiment(tmp_path / 'exp', gt, {
        'baseline': (BASE, {0: (files / 'good.json', None)})})
    _experiment(tmp_path / 'exp', other_gt, {'psa': (PSA, {0: (files / 'bad.json', None)})})
    err = _one_line_error(capsys, exp / 'baseline', exp / 'psa', '--out-dir', tmp_path / 'o')
    assert 'psa/seed-0/results.json: scored on the ground truth' in err and str(other_gt) in err
    # the experiment's parent folder, and a PSA run without its baseline
    err = _one_line_error(capsys, exp, '--out-dir', tmp_path / 'o')
    assert err.strip() == (f'error: {exp}: an experiment folder holding the runs baseline, psa, '
                           f'not one run; pass the runs: python scripts/compare_ap.py '
                           f'{exp}/baseline {exp}/psa --out-dir {exp}')
    err = _one_line_error(capsys, exp / 'psa', '--out-dir', tmp_path / 'o')
    assert (f'no run of its baseline {BASE} is among the inputs; compare it with its baseline: '
            f'python scripts/compare_ap.py {exp}/baseline {exp}/psa') in err
    # a non-finite metric
    (tmp_path / 'nan.json').write_text(json.dumps({'config': BASE, 'coco/AP': float('nan')}))
    err = _one_line_error(capsys, tmp_path / 'nan.json', '--out-dir', tmp_path / 'o')
    assert err.startswith(f'error: {tmp_path}/nan.json: coco/AP is nan; the run diverged')
    assert not (tmp_path / 'o').exists()
