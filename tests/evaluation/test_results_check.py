"""Well-formed but wrong COCO results are refused before scoring: one line naming the file and
the first offending entry, exit code 2, no metrics written (eval_coco.py, compare_ap.py)."""
import json

import pytest

from psa_pose.evaluation.coco import evaluate
from psa_pose.tools import compare_ap, eval_coco
from tests.evaluation.test_coco import _results


@pytest.fixture
def gt_file(tiny_coco):
    return f'{tiny_coco}/test_coco.json'


def _gt_results(gt_file):
    """The ground truth as results: AP 1.0 when scored."""
    return _results(gt_file, noise=0)


def _one_line(capsys, main, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
    return err.strip()[len('error: '):]


def _damaged(results, how):
    r = [dict(x) for x in results]
    if how == 'nan score':
        r[3]['score'] = float('nan')
    elif how == 'inf score':
        r[3]['score'] = float('inf')
    elif how == 'string score':
        r[3]['score'] = '0.9'
    elif how == 'nan keypoint':
        r[3]['keypoints'] = list(r[3]['keypoints'])
        r[3]['keypoints'][7] = float('nan')
    elif how == 'category 2':
        r[3]['category_id'] = 2
    elif how == 'twice':
        r = r + r
    return r


@pytest.mark.parametrize('how,message', [
    ('nan score', 'result #3 (image_id {id}) has the score nan; a NaN or infinite score'),
    ('inf score', 'result #3 (image_id {id}) has the score inf;'),
    ('string score', "result #3 (image_id {id}) has the score '0.9', not a number;"),
    ('nan keypoint', 'result #3 (image_id {id}): keypoint value #7 is nan, not a finite number'),
    ('category 2', 'result #3 (image_id {id}) has category_id 2, but the person category of '
                   'the ground truth is [1]'),
    ('twice', 'result #12 (image_id {first}) is an exact duplicate of result #0;'),
])
def test_wrong_results_are_refused_in_one_line(gt_file, tmp_path, capsys, how, message):
    good = _gt_results(gt_file)
    assert len(good) == 12
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(_damaged(good, how)))
    out = tmp_path / 'm.json'
    err = _one_line(capsys, eval_coco.main, '--gt', gt_file, '--results', bad, '--out', out)
    expected = message.format(id=good[3]['image_id'], first=good[0]['image_id'])
    assert err.startswith(f'{bad}: {expected}'), err
    assert not out.exists()


def test_results_on_half_the_images_need_partial(gt_file, tmp_path, capsys):
    good = _gt_results(gt_file)
    images = sorted({r['image_id'] for r in good})
    assert len(images) == 6
    half = [r for r in good if r['image_id'] in images[:3]]
    path = tmp_path / 'half.json'
    path.write_text(json.dumps(half))
    out = tmp_path / 'm.json'
    err = _one_line(capsys, eval_coco.main, '--gt', gt_file, '--results', path, '--out', out)
    assert err == (f'{path}: no result on 3 of the 6 images with people in {gt_file} (first: '
                   f'image_id {images[3]}); their people would count as misses; results of '
                   f'another or a partial split? pass --partial if the results leave images '
                   f'out on purpose')
    assert not out.exists()
    # on purpose: scored, the missing people count as misses
    assert eval_coco.main(['--gt', gt_file, '--results', str(path), '--out', str(out),
                           '--partial']) == 0
    ap = json.loads(out.read_text())['AP']
    assert 0 < ap < 1.0 and ap == evaluate(gt_file, str(path), partial=True)['AP']


def test_compare_ap_refuses_wrong_results(gt_file, tmp_path, capsys):
    good = tmp_path / 'good.json'
    good.write_text(json.dumps(_gt_results(gt_file)))
    twice = tmp_path / 'twice.json'
    twice.write_text(json.dumps(_damaged(_gt_results(gt_file), 'twice')))
    err = _one_line(capsys, compare_ap.main, '--gt', gt_file, '--results', good, twice,
                    '--out-dir', tmp_path / 'o')
    assert err.startswith(f'{twice}: result #12 ')
    assert 'is an exact duplicate of result #0' in err
    assert not (tmp_path / 'o').exists()
