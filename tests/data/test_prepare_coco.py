"""scripts/prepare_coco.sh, fetch_pretrained.sh and train.py/test.py --check, offline: made-up
archives of the generated images stand in for COCO's (their sizes and sha256 through
--manifest), a local folder for the weights' URLs, a temporary TORCH_HOME for the cache."""
import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch

from psa_pose.config import build_model, config_files, load_config
from psa_pose.engine import pretrained
from psa_pose.tools import prepare_coco
from psa_pose.data.prepare_coco import ARCHIVES, DETECTIONS
from psa_pose.utils import UserError
from tests.conftest import REPO, SCRIPT_ENV, run_script

CONFIG = config_files()['td-hm_res50-psa-p_8xb64-210e_coco-256x192']


def _zip(path, files):
    with zipfile.ZipFile(path, 'w') as zf:
        for name, source in files.items():
            zf.write(source, name)
    return str(path)


def _entry(path, url=None):
    data = open(path, 'rb').read()
    return {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            **({'url': url} if url else {})}


@pytest.fixture
def archives(tmp_path, tiny_coco):
    """(downloads folder with the three archives and the detection file, manifest path)."""
    src = tmp_path / 'downloads'
    src.mkdir()
    ann = os.path.join(tiny_coco, 'test_coco.json')
    images = sorted(glob.glob(os.path.join(tiny_coco, '*.jpg')))
    _zip(src / 'annotations_trainval2017.zip',
         {'annotations/person_keypoints_train2017.json': ann,
          'annotations/person_keypoints_val2017.json': ann,
          'annotations/captions_val2017.json': ann})      # what is not needed stays out
    for split in ('train2017', 'val2017'):
        _zip(src / f'{split}.zip', {f'{split}/{os.path.basename(i)}': i for i in images})
    shutil.copy(os.path.join(tiny_coco, 'test_coco_det.json'), src / os.path.basename(DETECTIONS))
    manifest = tmp_path / 'manifest.json'
    manifest.write_text(json.dumps({a.name: _entry(src / a.name, f'file://{src / a.name}')
                                    for a in ARCHIVES}))
    return src, manifest


def prepare(*args, cwd):
    """prepare_coco's main in this process (as scripts/prepare_coco.sh runs it): a
    CompletedProcess-like (returncode, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = prepare_coco.main([str(a) for a in args])
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_the_shell_script_runs_it(archives, tmp_path):
    src, manifest = archives
    res = run_script('bash', f'{REPO}/scripts/prepare_coco.sh', tmp_path / 'coco', '--from', src,
                     '--manifest', manifest, cwd=tmp_path, timeout=300)
    assert res.stdout.strip().splitlines()[-1] == (
        f'COCO ready in {tmp_path}/coco; check a config with: python scripts/train.py CONFIG '
        f'--check')
    res = run_script('bash', f'{REPO}/scripts/prepare_coco.sh', cwd=tmp_path, check=False)
    assert res.returncode == 2 and res.stderr.startswith('usage: ')


def layout(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(f'{root}/**', recursive=True)
                  if os.path.isfile(p) and '/.downloads/' not in p)


def test_unpacks_the_layout_the_configs_read_and_skips_what_is_there(archives, tiny_coco,
                                                                     tmp_path):
    src, manifest = archives
    data = tmp_path / 'data' / 'coco'
    res = prepare(data, '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    images = sorted(os.path.basename(p) for p in glob.glob(os.path.join(tiny_coco, '*.jpg')))
    assert layout(data) == sorted(
        ['annotations/person_keypoints_train2017.json', 'annotations/person_keypoints_val2017.json',
         DETECTIONS] + [f'{s}/{i}' for s in ('train2017', 'val2017') for i in images])
    assert not glob.glob(f'{data}/.*')                     # no temporary folder left
    again = prepare(data, '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.splitlines()[:4] == [
        'annotations_trainval2017.zip: already in place', 'val2017.zip: already in place',
        'train2017.zip: already in place',
        'COCO_val2017_detections_AP_H_56_person.json: already in place']


def test_downloads_where_there_is_no_from_folder(archives, tmp_path):
    src, manifest = archives
    data = tmp_path / 'coco'
    res = prepare(data, '--manifest', manifest, '--no-detections', cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f'downloading file://{src}/val2017.zip' in res.stdout
    assert sorted(os.listdir(data / '.downloads')) == sorted(a.name for a in ARCHIVES)
    assert (data / 'val2017').is_dir() and not (data / DETECTIONS).exists()


@pytest.mark.parametrize('damage,problem', [
    ('checksum', 'val2017.zip: sha256 '),
    ('truncated', 'val2017.zip: {size} bytes, val2017.zip has {full} (a partial or different '
                  'download); delete it and download it again'),
    ('truncated-unrecorded', 'val2017.zip: not a complete zip archive ('),
])
def test_a_bad_archive_is_one_line_and_nothing_half_unpacked(archives, tmp_path, damage,
                                                            problem):
    src, manifest = archives
    entries = json.loads(manifest.read_text())
    full = entries['val2017.zip']['size']
    if damage == 'checksum':
        entries['val2017.zip']['sha256'] = '0' * 64
    else:
        data = (src / 'val2017.zip').read_bytes()
        (src / 'val2017.zip').write_bytes(data[:len(data) * 2 // 3])
        if damage == 'truncated-unrecorded':
            entries['val2017.zip'].update(size=None, sha256=None)
    manifest.write_text(json.dumps(entries))
    data_dir = tmp_path / 'coco'
    res = prepare(data_dir, '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert res.returncode == 2
    size = os.path.getsize(src / 'val2017.zip')
    assert res.stderr.startswith(f'error: {src}/' + problem.format(size=size, full=full))
    assert len(res.stderr.strip().splitlines()) == 1
    # the annotations before it are in place; nothing of val2017, no temporary folder
    assert layout(data_dir) == ['annotations/person_keypoints_train2017.json',
                                'annotations/person_keypoints_val2017.json']
    assert not glob.glob(f'{data_dir}/.*.partial') and not (data_dir / 'val2017').exists()


def test_the_recorded_archives_are_cocos():
    assert [(a.name, a.url, a.size) for a in ARCHIVES] == [
        ('annotations_trainval2017.zip',
         'http://images.cocodataset.org/annotations/annotations_trainval2017.zip', 252_907_541),
        ('val2017.zip', 'http://images.cocodataset.org/zips/val2017.zip', 815_585_330),
        ('train2017.zip', 'http://images.cocodataset.org/zips/train2017.zip', 19_336_861_798)]


def test_missing_detection_file_is_one_line(archives, tmp_path):
    src, manifest = archives
    os.remove(src / os.path.basename(DETECTIONS))
    res = prepare(tmp_path / 'coco', '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith(f'error: {tmp_path}/coco/{DETECTIONS}: missing; get ')


def test_every_config_names_weights_that_fetch_pretrained_knows():
    urls = pretrained.config_urls(sorted(config_files().values()))
    assert sorted(os.path.basename(u) for u in urls) == sorted([
        'hrnet_w32-36af842e.pth', 'hrnet_w48-8ef0771d.pth',
        os.path.basename(pretrained.resolve_url('torchvision://resnet50')),
        os.path.basename(pretrained.resolve_url('torchvision://resnet101')),
        os.path.basename(pretrained.resolve_url('torchvision://resnet152')),
        os.path.basename(pretrained.resolve_url('mmcls://resnet50_v1d')),
        os.path.basename(pretrained.resolve_url('mmcls://resnext50_32x4d')),
        # RTMPose's CSPNeXt backbones, pretrained on AIC + COCO by mmpose
        'cspnext-tiny_udp-aic-coco_210e-256x192-cbed682d_20230130.pth',
        'cspnext-s_udp-aic-coco_210e-256x192-92f5a029_20230130.pth',
        'cspnext-m_udp-aic-coco_210e-256x192-f2f7d6f6_20230130.pth'])
    assert sum(len(v) for v in urls.values()) == len(config_files())


@pytest.mark.slow
def test_prepare_fetch_and_check_a_coco_config_offline(archives, tmp_path, monkeypatch):
    """The README's COCO path: prepare the data, fetch the weights from a local mirror into
    an empty cache, then train.py --check and test.py --check on a model-zoo config."""
    src, manifest = archives
    assert prepare(tmp_path / 'data' / 'coco', '--from', src, '--manifest', manifest,
                   cwd=tmp_path).returncode == 0
    env = {**SCRIPT_ENV, 'TORCH_HOME': str(tmp_path / 'torch')}
    url = pretrained.resolve_url('torchvision://resnet50')
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    # ImageNet ResNet-50 keys and shapes (zeros: only the keys are checked)
    model = build_model(load_config(CONFIG))
    torch.save({k: torch.zeros_like(v) for k, v in model.backbone.state_dict().items()
                if '.psa.' not in k}, mirror / os.path.basename(url))

    def check(script, *args):
        return run_script(sys.executable, f'{REPO}/scripts/{script}', CONFIG, *args, '--check',
                          cwd=tmp_path, env=env, check=False, timeout=600)
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / os.path.basename(url)
    monkeypatch.setenv('TORCH_HOME', env['TORCH_HOME'])
    assert pretrained.describe('torchvision://resnet50') == (
        f'torchvision://resnet50 -> {cached} (NOT in the local cache: the run downloads it '
        f'(scripts/fetch_pretrained.sh))')
    out = run_script('bash', f'{REPO}/scripts/fetch_pretrained.sh', CONFIG, '--source',
                     f'file://{mirror}', cwd=tmp_path, env=env).stdout
    assert out.startswith(f'fetched: {cached} (') and cached.is_file()
    res = check('train.py')
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    people = len(json.loads((tmp_path / 'data/coco/annotations/person_keypoints_val2017.json')
                            .read_text())['annotations'])
    assert f'train:   annotations data/coco/annotations/person_keypoints_train2017.json: ' \
           f'6 images, {people} people ({people} with keypoints)' in lines
    assert f'pretrained: model.backbone.init_cfg.checkpoint: torchvision://resnet50 -> ' \
           f'{cached} (in the local cache)' in lines
    assert lines[-1].startswith('check passed: the train run of ')
    assert not (tmp_path / 'work_dirs').exists()
    # test.py --check: the detection file and its boxes
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    res = check('test.py', ckpt)
    assert res.returncode == 0, res.stderr
    assert f'test:   person boxes data/coco/{DETECTIONS}: {people} detections' in \
        res.stdout.splitlines()
    assert not (tmp_path / 'work_dirs').exists()


def test_fetch_pretrained_from_a_file_url_into_the_cache(tmp_path, monkeypatch, capsys):
    """What fetch_pretrained.sh does per URL, with a made-up file: into the empty cache under
    the URL's file name, left alone once there; a mirror without it is one line."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url = 'https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w32-36af842e.pth'
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    (mirror / 'hrnet_w32-36af842e.pth').write_bytes(b'weights')
    cached = tmp_path / 'torch' / 'hub' / 'checkpoints' / 'hrnet_w32-36af842e.pth'
    assert pretrained.cache_path(url) == str(cached)
    assert pretrained.fetch(url, f'file://{mirror}') == (str(cached), True)
    assert cached.read_bytes() == b'weights'
    assert pretrained.fetch(url, f'file://{tmp_path}/elsewhere') == (str(cached), False)
    assert pretrained.describe(url) == f'{url} -> {cached} (in the local cache)'
    os.remove(cached)
    with pytest.raises(UserError) as err:
        pretrained.fetch(url, str(tmp_path / 'elsewhere'))        # a plain folder works too
    assert str(err.value).startswith(f'file://{tmp_path}/elsewhere/hrnet_w32-36af842e.pth: '
                                     f'cannot be fetched (')
    assert not list((tmp_path / 'torch' / 'hub' / 'checkpoints').iterdir())   # no partial file


@pytest.mark.parametrize('break_it,problem', [
    (lambda d: (d / 'annotations/person_keypoints_val2017.json').write_text('{"images": ['),
     '{d}/annotations/person_keypoints_val2017.json: not COCO keypoints JSON (not valid JSON'),
    (lambda d: next((d / 'val2017').iterdir()).unlink(),
     '{d}/val2017: 1 of the 6 images {d}/annotations/person_keypoints_val2017.json names are '
     'missing (first: '),
])
def test_a_broken_layout_already_in_place_is_not_ready(archives, tmp_path, break_it, problem):
    """Unpacked, then damaged: the next run does not say "already in place ... ready"."""
    src, manifest = archives
    data = tmp_path / 'coco'
    assert prepare(data, '--from', src, '--manifest', manifest, cwd=tmp_path).returncode == 0
    break_it(data)
    before = layout(data)
    res = prepare(data, '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith('error: ' + problem.format(d=data))
    assert 'COCO ready' not in res.stdout and layout(data) == before


def test_an_archive_of_another_category_is_not_ready(archives, tmp_path, tiny_coco):
    src, manifest = archives
    gt = json.loads(open(os.path.join(tiny_coco, 'test_coco.json')).read())
    for c in gt['categories']:
        c['name'] = 'dog'
    bad = tmp_path / 'dog.json'
    bad.write_text(json.dumps(gt))
    _zip(src / 'annotations_trainval2017.zip',
         {'annotations/person_keypoints_train2017.json': str(bad),
          'annotations/person_keypoints_val2017.json': str(bad)})
    entries = json.loads(manifest.read_text())
    entries['annotations_trainval2017.zip'].update(
        _entry(src / 'annotations_trainval2017.zip'))
    manifest.write_text(json.dumps(entries))
    data = tmp_path / 'coco'
    res = prepare(data, '--from', src, '--manifest', manifest, cwd=tmp_path)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f'error: {data}/annotations/person_keypoints_train2017.json: holds '
                           f'no person annotations')
    assert 'COCO ready' not in res.stdout
