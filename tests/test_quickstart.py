"""The README's first command in its tiny setting (`scripts/quickstart.sh --tiny`), then what a
user does next with its released checkpoint: the demo and the evaluation on the 4 real COCO
images (tests/conftest.py: mini_coco) with mmpose's `bbox_file` (person detections), not only GT boxes."""
import glob
import json
import os
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from psa_pose.utils import UserError
from psa_pose.deploy.demo import read_bboxes
from psa_pose.deploy.publish import load_published
from psa_pose.utils import sha256_of
from tests.conftest import REPO, SCRIPT_ENV, coco_mini_dir, run_script

BASE = 'td-hm_res18_dark-1xb16-24e_synth-128x96'
PSA = 'td-hm_res18-psa-p_dark-1xb16-24e_synth-128x96'
ENV = SCRIPT_ENV
STEPS = ('1/6', '2/6', '3/6', '4/6', '5/6', '6/6', 'done')
run = run_script


@pytest.fixture(scope='module')
def quickstart(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('user')
    exp, data = cwd / 'exp', cwd / 'data'
    out = run('bash', f'{REPO}/scripts/quickstart.sh', '--tiny', cwd=cwd,
              env={**ENV, 'EXP_DIR': str(exp), 'DATA_DIR': str(data)})
    return exp, data, cwd, out.stdout


@pytest.mark.slow
def test_quickstart_runs_the_whole_job(quickstart):
    exp, data, _, stdout = quickstart
    # the steps in order, each announced
    positions = [stdout.index(f'[quickstart {s} |') for s in STEPS]
    assert positions == sorted(positions)
    assert len(json.loads((data / 'annotations' / 'person_keypoints_val2017.json').read_text())
               ['images']) == 16
    # pycocotools AP per twin, and the comparison table built from it, printed and written
    rows = json.loads((exp / 'compare.json').read_text())
    assert [(r['config'], r['psa']) for r in rows] == [(BASE, '-'), (PSA, 'p (paper)')]
    for row, role in zip(rows, ('baseline', 'psa')):
        ours = json.loads((exp / role / 'pycocotools.json').read_text())
        mmpose = json.loads((exp / role / 'metrics.json').read_text())
        # the table's AP is pycocotools' on the run's own results file, found by itself
        assert row['AP'] == ours['AP'] and row['source'] == str(exp / role / 'metrics.json')
        assert ours['AP'] == pytest.approx(mmpose['coco/AP'], abs=1e-9)
        # recorded beside the metrics, relative to the run folder, with its sha256
        assert mmpose['coco_results'] == 'results.json'
        assert mmpose['coco_results_sha256'] == sha256_of(str(exp / role / 'results.json'))
        assert mmpose['ann_file'] == str(data / 'annotations' / 'person_keypoints_val2017.json')
        assert 0 <= row['AP_ci'][0] <= row['AP_ci'][1] <= 1
        assert row['bootstrap'] == {'resamples': 1000, 'seed': 0, 'images': 16, 'level': 0.95}
    assert rows[1]['delta_AP'] == rows[1]['AP'] - rows[0]['AP']
    low, high = rows[1]['delta_AP_ci']
    assert rows[1]['verdict'] == ('better' if low > 0 else 'worse' if high < 0 else
                                  'no detectable difference')
    table = (exp / 'compare.md').read_text()
    assert table.split('\n\n')[0] in stdout and f'| {PSA} | p (paper) | 128x96 |' in table
    assert f"| {rows[1]['verdict']} |" in table and 'Verdict: better / worse' in stdout
    assert (exp / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # the diagnosis (--diagnose): compact on the terminal, full in compare.md/json, plotted
    assert set(rows[1]['errors']) == {'good', 'jitter', 'inversion', 'swap', 'miss'}
    assert rows[1]['mde_AP'] >= 0 and set(rows[1]['delta_AP_at_ci']) == set(rows[1]['AP_at'])
    assert 'Diagnosis (keypoints of detections matched at OKS 0.1' in stdout
    assert 'AP@0.9' in stdout and 'Minimum detectable ΔAP' in stdout
    assert '| AP at OKS 0.9 |' in table
    assert (exp / 'diagnose.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # the released PSA checkpoint: hash-named, loadable, with its config and metrics
    [released] = glob.glob(str(exp / 'release' / f'{PSA}-*_*.pth'))
    meta = load_published(released)['meta']
    assert meta['config'] == PSA
    assert meta['metrics']['AP'] == pytest.approx(rows[1]['AP'], abs=1e-9)   # test.py's
    # published as such, and the COCO model zoo left alone (--no-zoo): a single line
    step6 = stdout[stdout.index('[quickstart 6/6'):stdout.index('[quickstart done')]
    assert step6.strip().splitlines()[1:] == [f'published {released} (sha256 '
                                              f'{sha256_of(released)})']
    # the closing list names each artefact, and each exists
    tail = stdout[stdout.index('[quickstart done'):]
    for path in (data, exp / 'compare.md', exp / 'compare.png', released):
        assert str(path) in tail and os.path.exists(path)


@pytest.mark.slow
def test_quickstart_reuses_its_data_and_rejects_bad_arguments(quickstart, tmp_path):
    _, data, cwd, _ = quickstart
    assert (data / '.generated-with').read_text().strip() == '--train-images 32 --val-images 16'
    res = run('bash', f'{REPO}/scripts/quickstart.sh', '--arch', 'vgg', cwd=cwd, check=False)
    assert res.returncode == 2
    assert res.stderr.strip() == ('error: --arch vgg: no such synth configs in configs/synth/; '
                                  'use res18, hrnet-w16 or rtmpose-t')
    res = run('bash', f'{REPO}/scripts/quickstart.sh', '--seeds', '0', cwd=cwd, check=False)
    assert res.returncode == 2
    assert res.stderr.strip() == 'error: --seeds 0: needs a number of seeds, e.g. --seeds 3'


DETS = os.path.join(coco_mini_dir() or '', 'test_coco_det_AP_H_56.json')  # with mini_coco


@pytest.mark.slow
def test_demo_draws_on_a_real_image(quickstart, tmp_path, mini_coco):
    exp, _, cwd, _ = quickstart
    [released] = glob.glob(str(exp / 'release' / f'{PSA}-*_*.pth'))
    image = os.path.join(mini_coco, '000000000785.jpg')
    out = run(sys.executable, f'{REPO}/scripts/demo.py', exp / 'configs' / f'{PSA}.py',
              released, image, '--bboxes', DETS, '--out', tmp_path / 'demo.png', cwd=cwd)
    dets = [d for d in json.load(open(DETS)) if d['image_id'] == 785 and d['score'] >= 0.3]
    assert out.stdout.strip().endswith(f'{len(dets)} people drawn to {tmp_path / "demo.png"}')
    drawn = np.asarray(Image.open(tmp_path / 'demo.png'))
    original = np.asarray(Image.open(image))
    assert drawn.shape == original.shape and not np.array_equal(drawn, original)
    # a bad box file: one line, nothing written
    (tmp_path / 'boxes.json').write_text('{"images": []}')
    res = run(sys.executable, f'{REPO}/scripts/demo.py', exp / 'configs' / f'{PSA}.py',
              released, image, '--bboxes', tmp_path / 'boxes.json', '--out', tmp_path / 'x.png',
              cwd=cwd, check=False)
    assert res.returncode == 2
    assert res.stderr.strip() == (f'error: {tmp_path / "boxes.json"}: a JSON object without '
                                  f'"annotations"; expected COCO detections, a COCO annotation '
                                  f'file or a list of [x, y, w, h]')
    assert not (tmp_path / 'x.png').exists()


def test_read_bboxes(tmp_path, mini_coco):
    image = os.path.join(mini_coco, '000000196141.jpg')
    dets = [d for d in json.load(open(DETS)) if d['image_id'] == 196141]
    boxes = read_bboxes(DETS, image, score_thr=0.0)
    np.testing.assert_allclose(boxes, [d['bbox'] for d in dets], rtol=1e-6)
    assert len(read_bboxes(DETS, image, score_thr=0.5)) == sum(d['score'] >= 0.5 for d in dets)
    gt = json.load(open(os.path.join(mini_coco, 'test_coco.json')))
    np.testing.assert_allclose(
        read_bboxes(os.path.join(mini_coco, 'test_coco.json'), image),
        [a['bbox'] for a in gt['annotations'] if a['image_id'] == 196141], rtol=1e-6)
    (tmp_path / 'plain.json').write_text('[[1, 2, 30, 40]]')
    assert read_bboxes(str(tmp_path / 'plain.json'), image).tolist() == [[1, 2, 30, 40]]
    (tmp_path / 'flat.json').write_text('[[1, 2, 0, 40]]')
    with pytest.raises(UserError, match=r'flat.json: boxes must be \[x, y, w, h\] with w, h > 0'):
        read_bboxes(str(tmp_path / 'flat.json'), image)
    with pytest.raises(UserError, match=r'no person box for image id 1 \(000000000001.jpg\)'):
        read_bboxes(DETS, str(tmp_path / '000000000001.jpg'))


@pytest.mark.slow
def test_real_images_with_person_detections(quickstart, tmp_path, mini_coco):
    """The synth config evaluated on the 4 real COCO images through mmpose's bbox_file: one
    prediction per detection box, pycocotools' AP equal to mmpose's CocoMetric."""
    exp, _, cwd, _ = quickstart
    [released] = glob.glob(str(exp / 'release' / f'{PSA}-*_*.pth'))
    options = [f'test_dataloader.dataset.data_root={mini_coco}/',
               'test_dataloader.dataset.ann_file=test_coco.json',
               'test_dataloader.dataset.data_prefix.img=',
               f'test_dataloader.dataset.bbox_file={DETS}',
               f'test_evaluator.ann_file={mini_coco}/test_coco.json']
    run(sys.executable, f'{REPO}/scripts/test.py', exp / 'configs' / f'{PSA}.py', released,
        '--work-dir', tmp_path / 'w', '--out', tmp_path / 'm.json', '--coco-results',
        tmp_path / 'results.json', '--dump', tmp_path / 'preds.pkl', '--cfg-options', *options,
        cwd=cwd)
    dets = json.load(open(DETS))
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == len(dets) == 118      # mmpose keeps every box (det_bbox_thr=0)
    got = sorted((p['img_id'], *np.round(p['pred_instances']['bboxes'][0], 2)) for p in preds)
    want = sorted((d['image_id'], *np.round([d['bbox'][0], d['bbox'][1],
                                             d['bbox'][0] + d['bbox'][2],
                                             d['bbox'][1] + d['bbox'][3]], 2)) for d in dets)
    np.testing.assert_allclose(np.array(got), np.array(want), atol=0.02)
    results = json.loads((tmp_path / 'results.json').read_text())
    assert {r['image_id'] for r in results} == {785, 40083, 196141, 197388}
    run(sys.executable, f'{REPO}/scripts/eval_coco.py', '--gt', f'{mini_coco}/test_coco.json',
        '--results', tmp_path / 'results.json', '--out', tmp_path / 'eval.json', cwd=cwd)
    ours = json.loads((tmp_path / 'eval.json').read_text())
    mmpose = json.loads((tmp_path / 'm.json').read_text())
    assert ours['AP'] == pytest.approx(mmpose['coco/AP'], abs=1e-9)


@pytest.mark.slow
def test_quickstart_narrow_hrnet(tmp_path):
    out = run('bash', f'{REPO}/scripts/quickstart.sh', '--tiny', '--arch', 'hrnet-w16',
              cwd=tmp_path, env={**ENV, 'EXP_DIR': str(tmp_path / 'exp'),
                                 'DATA_DIR': str(tmp_path / 'data')})
    rows = json.loads((tmp_path / 'exp' / 'compare.json').read_text())
    assert [(r['config'], r['params']) for r in rows] == [
        ('td-hm_hrnet-w16_dark-1xb16-24e_synth-128x96', 1_461_473),
        ('td-hm_hrnet-w16-psa-p_dark-1xb16-24e_synth-128x96', 1_594_305)]
    [released] = glob.glob(str(tmp_path / 'exp' / 'release' / '*.pth'))
    assert load_published(released)['meta']['config'] == rows[1]['config']
    assert f'released model   {released}' in out.stdout


@pytest.mark.slow
def test_quickstart_seeds(tmp_path):
    """--seeds 2: each twin twice, under <role>/seed-<k>/, mean ± std and a pooled interval."""
    exp = tmp_path / 'exp'
    out = run('bash', f'{REPO}/scripts/quickstart.sh', '--tiny', '--seeds', '2', cwd=tmp_path,
              env={**ENV, 'EXP_DIR': str(exp), 'DATA_DIR': str(tmp_path / 'data')})
    base, psa = json.loads((exp / 'compare.json').read_text())
    assert base['seeds'] == psa['seeds'] == [0, 1]
    for row, role in ((base, 'baseline'), (psa, 'psa')):
        aps = [json.loads((exp / role / f'seed-{k}' / 'pycocotools.json').read_text())['AP']
               for k in (0, 1)]
        assert row['AP'] == pytest.approx(np.mean(aps), abs=1e-15)
        assert row['AP_std'] == pytest.approx(np.std(aps, ddof=1), abs=1e-15)
        assert [json.loads((exp / role / f'seed-{k}' / 'metrics.json').read_text())['seed']
                for k in (0, 1)] == [0, 1]
    assert psa['verdict'] in ('better', 'worse', 'no detectable difference')
    assert 'seeds resampled too' in out.stdout
    [released] = glob.glob(str(exp / 'release' / f'{PSA}-*_*.pth'))
    assert load_published(released)['meta']['metrics']['AP'] == pytest.approx(json.loads(
        (exp / 'psa' / 'seed-0' / 'pycocotools.json').read_text())['AP'], abs=1e-9)  # test.py's
