"""Experiment folders stand alone, and test.py's outputs are all or nothing, never over an input.

The run folders are written as ``test.py --out --coco-results`` writes them
(:func:`psa_pose.evaluation.test_outputs.write_test_outputs`), from results made of the ground
truth, so no model is run.
"""
import errno
import json
import os
import shutil

import pytest

from psa_pose.evaluation import test_outputs
from psa_pose.evaluation.coco import evaluate
from psa_pose.tools import compare_ap, eval_coco
from psa_pose.utils import UserError
from tests.evaluation.test_coco import _results
from tests.evaluation.test_results_check import _one_line

BASE = 'td-hm_res50_8xb64-210e_coco-256x192'
PSA = 'td-hm_res50-psa-p_8xb64-210e_coco-256x192'


def _test_run(run, gt_file, results, config, model_json=None):
    """A run folder as test.py writes it: metrics.json and results.json."""
    run.mkdir(parents=True, exist_ok=True)
    model_json = model_json or run.parent / f'.{run.name}.keypoints.json'
    model_json.write_text(json.dumps(results))
    metrics = {f'coco/{k}': v for k, v in evaluate(gt_file, str(model_json)).items()}
    return test_outputs.write_test_outputs(
        metrics, {'config': config, 'seed': 0}, str(run / 'metrics.json'), str(model_json),
        str(run / 'results.json'), None, gt_file, partial=False)


@pytest.fixture
def experiment(tiny_coco, tmp_path):
    gt_file = f'{tiny_coco}/test_coco.json'
    exp = tmp_path / 'exp'
    _test_run(exp / 'baseline', gt_file, _results(gt_file, noise=0), BASE)
    _test_run(exp / 'psa', gt_file, _results(gt_file, noise=6.0, seed=1), PSA)
    return exp, gt_file


def _compare(capsys, exp, out):
    assert compare_ap.main([str(exp / 'baseline'), str(exp / 'psa'), '--bootstrap', '50',
                            '--out-dir', str(out)]) == 0
    capsys.readouterr()
    return json.loads((out / 'compare.json').read_text())


def test_metrics_json_records_its_files_relative_with_sha256(experiment):
    exp, gt_file = experiment
    data = json.loads((exp / 'psa' / 'metrics.json').read_text())
    assert data['coco_results'] == 'results.json'
    assert data['ann_file'] == gt_file
    from psa_pose.utils import sha256_of
    assert data['coco_results_sha256'] == sha256_of(str(exp / 'psa' / 'results.json'))
    assert data['ann_file_sha256'] == sha256_of(gt_file)
    assert data['partial_results'] is False
    assert not [p for p in os.listdir(exp / 'psa') if p.startswith('.')]


def test_a_copied_experiment_reads_only_its_own_files(experiment, tmp_path, capsys):
    """cp -r EXP EXP4; EXP4's PSA results changed: refused by name; EXP deleted: EXP4
    compares exactly as EXP did."""
    exp, gt_file = experiment
    rows = _compare(capsys, exp, tmp_path / 'o1')
    assert rows[0]['AP'] == 1.0 and 0 < rows[1]['AP'] < 1.0
    copy = tmp_path / 'exp4'
    shutil.copytree(exp, copy)
    changed = _results(gt_file, noise=0)
    (copy / 'psa' / 'results.json').write_text(json.dumps(changed))
    err = _one_line(capsys, compare_ap.main, copy / 'baseline', copy / 'psa', '--out-dir',
                    tmp_path / 'o2')
    assert err.startswith(f'{copy}/psa/results.json: changed since {copy}/psa/metrics.json '
                          f'was written (sha256 differs from its coco_results_sha256)')
    assert not (tmp_path / 'o2').exists()
    shutil.copy(exp / 'psa' / 'results.json', copy / 'psa' / 'results.json')
    shutil.rmtree(exp)
    again = _compare(capsys, copy, tmp_path / 'o3')
    assert [r['AP'] for r in again] == [r['AP'] for r in rows]
    assert again[1]['delta_AP'] == rows[1]['delta_AP']
    assert again[1]['source'] == f'{copy}/psa/metrics.json'


def test_missing_or_outside_files_are_one_line(experiment, tmp_path, capsys):
    exp, gt_file = experiment
    (exp / 'psa' / 'results.json').unlink()
    err = _one_line(capsys, compare_ap.main, exp / 'baseline', exp / 'psa')
    assert err == (f'{exp}/psa/results.json: missing, but {exp}/psa/metrics.json names it as '
                   f'coco_results; restore it or test the run again')
    # a metrics.json of the old test.py: an absolute path into another folder
    elsewhere = tmp_path / 'elsewhere.json'
    shutil.copy(exp / 'baseline' / 'results.json', elsewhere)
    data = json.loads((exp / 'psa' / 'metrics.json').read_text())
    data['coco_results'] = str(elsewhere)
    del data['coco_results_sha256']
    (exp / 'psa' / 'metrics.json').write_text(json.dumps(data))
    err = _one_line(capsys, compare_ap.main, exp / 'baseline', exp / 'psa')
    assert err.startswith(f'{exp}/psa/metrics.json: its coco_results {elsewhere} is outside '
                          f'the run folder {exp}/psa (a copied folder, or one written by an '
                          f'older test.py)')
    # the ground truth changed since the test
    data['coco_results'] = 'results.json'
    shutil.copy(elsewhere, exp / 'psa' / 'results.json')
    data['ann_file_sha256'] = '0' * 64
    (exp / 'psa' / 'metrics.json').write_text(json.dumps(data))
    err = _one_line(capsys, compare_ap.main, exp / 'baseline', exp / 'psa')
    assert err.startswith(f'{gt_file}: changed since {exp}/psa/metrics.json was written')


def test_wrong_model_results_write_nothing(experiment, capsys):
    """The model's results hold a NaN score: nothing of the previous test is replaced, no
    temporary is left."""
    exp, gt_file = experiment
    run = exp / 'psa'
    before = {p: (run / p).read_bytes() for p in ('metrics.json', 'results.json')}
    bad = _results(gt_file, noise=0)
    bad[5]['score'] = float('nan')
    with pytest.raises(UserError, match=r'result #5 \(image_id \d+\) has the score nan'):
        _test_run(run, gt_file, bad, PSA, model_json=exp / 'model.json')
    assert {p: (run / p).read_bytes() for p in before} == before
    assert sorted(os.listdir(run)) == ['metrics.json', 'results.json']


def test_full_disk_is_one_line_and_changes_nothing(experiment, monkeypatch):
    exp, gt_file = experiment
    run = exp / 'psa'
    before = {p: (run / p).read_bytes() for p in ('metrics.json', 'results.json')}
    real = json.dump

    def full(obj, f, **kwargs):
        real(obj, f, **kwargs)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(test_outputs.json, 'dump', full)
    with pytest.raises(UserError) as err:
        _test_run(run, gt_file, _results(gt_file, noise=0), PSA, model_json=exp / 'model.json')
    assert str(err.value).startswith(f'no space left writing {run}/metrics.json; nothing was '
                                     f'changed')
    assert {p: (run / p).read_bytes() for p in before} == before
    assert sorted(os.listdir(run)) == ['metrics.json', 'results.json']


def test_outputs_never_replace_inputs(experiment, tmp_path, capsys):
    exp, gt_file = experiment
    results = exp / 'psa' / 'results.json'
    gt_before = open(gt_file, 'rb').read()
    for out, name in ((gt_file, '--gt'), (results, '--results')):
        err = _one_line(capsys, eval_coco.main, '--gt', gt_file, '--results', results,
                        '--out', out)
        assert err == (f'{out}: --out is the same file as {name} ({out}); an output never '
                       f'replaces an input: choose another --out')
    # the same file by another name: a link
    link = tmp_path / 'link.json'
    os.symlink(results, link)
    err = _one_line(capsys, eval_coco.main, '--gt', gt_file, '--results', results, '--out', link)
    assert err.startswith(f'{link}: --out is the same file as --results')
    assert open(gt_file, 'rb').read() == gt_before
    # compare_ap's compare.json over a results file of that name
    other = tmp_path / 'o' / 'compare.json'
    other.parent.mkdir()
    shutil.copy(results, other)
    err = _one_line(capsys, compare_ap.main, '--gt', gt_file, '--results',
                    exp / 'baseline' / 'results.json', other, '--out-dir', other.parent)
    assert err == (f'{other}: --out-dir is the same file as the input of compare ({other}); '
                   f'an output never replaces an input: choose another --out-dir')
    assert sorted(os.listdir(other.parent)) == ['compare.json']


def test_test_outputs_are_checked_against_the_test_inputs(tiny_coco):
    from mmengine.config import Config
    gt_file = f'{tiny_coco}/test_coco.json'
    cfg = Config(dict(
        test_dataloader=dict(dataset=dict(data_root=f'{tiny_coco}/', ann_file='test_coco.json',
                                          bbox_file=f'{tiny_coco}/test_coco_det.json')),
        test_evaluator=dict(type='CocoMetric', ann_file=gt_file)))
    for option in ('out', 'coco_results', 'dump'):
        outputs = dict(out=None, coco_results=None, dump=None)
        outputs[option] = gt_file
        with pytest.raises(UserError) as err:
            test_outputs.check_test_outputs(cfg, 'c.py', 'e.pth', **outputs)
        flag = '--' + option.replace('_', '-')
        assert str(err.value) == (f'{gt_file}: {flag} is the same file as '
                                  f'test_evaluator.ann_file ({gt_file}); an output never '
                                  f'replaces an input: choose another {flag}')
    with pytest.raises(UserError, match='--coco-results is the same file as --out'):
        test_outputs.check_test_outputs(cfg, 'c.py', 'e.pth', 'm.json', 'm.json', None)
    with pytest.raises(UserError, match='test_dataloader.dataset.bbox_file'):
        test_outputs.check_test_outputs(cfg, 'c.py', 'e.pth', None,
                                        f'{tiny_coco}/test_coco_det.json', None)
    assert test_outputs.partial_by_design(cfg)
    cfg.test_dataloader.dataset.bbox_file = None
    assert not test_outputs.partial_by_design(cfg)
    cfg.test_dataloader.dataset.indices = 5
    assert test_outputs.partial_by_design(cfg)
