"""Bad input fails before training/testing starts: one line, exit code 2, nothing written.

The checks run in-process on the tiny configs of tests/configs (nothing is built but a few
tiny modules); a few subprocess runs of scripts/train.py and scripts/test.py show the whole
path: one stderr line, no traceback, no checkpoint or metrics file.
"""
import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
from typing import Optional

import pytest
import torch
import torch.nn as nn

from psa_pose.models import PSAResNet
from psa_pose.tools import demo as demo_tool
from psa_pose.tools import publish as publish_tool
from psa_pose.tools import test as test_tool
from psa_pose.tools import train as train_tool
from psa_pose.utils import UserError, sha256_of
from psa_pose.engine.preflight import check_config, check_weights, checked_runner
from psa_pose.config import load_config
from psa_pose.config import build_model
from tests.conftest import REPO, in_process, tiny_coco_dir

TINY_COCO = tiny_coco_dir()     # read while this module is collected

BASE = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18_1xb2-2e_minicoco-128x96.py')
PSA = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py')
ANN = os.path.join(TINY_COCO, 'test_coco.json')
DETS = os.path.join(TINY_COCO, 'test_coco_det.json')
# no PYTHONWARNINGS=ignore: the one stderr line must hold with Python's default warnings
ENV = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
# the data root as the tiny configs write it (relative to the config file; ends with '/')
ROOT = load_config(PSA, None).train_dataloader.dataset.data_root


def cfg_of(options: Optional[dict] = None, config: str = PSA):
    return load_config(config, options)


def refused(options: dict, mode: str = 'train', config: str = PSA) -> str:
    """The one-line message check_config gives for the config with ``options``."""
    with pytest.raises(UserError) as err:
        check_config(cfg_of(options, config), config, mode)
    message = str(err.value)
    assert '\n' not in message
    return message


def write(path, content) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.fixture(scope='module')
def gt():
    with open(ANN) as f:
        return json.load(f)


def test_the_tiny_configs_pass():
    for config in (BASE, PSA):
        assert check_config(cfg_of(config=config), config, 'train') == []
        assert check_config(cfg_of(config=config), config, 'test') == []
    # a detection file of the images, as mmpose's COCO configs use one
    cfg = cfg_of({'test_dataloader.dataset.bbox_file': DETS})
    assert check_config(cfg, PSA, 'test') == []


def test_the_real_images_and_their_detection_file_pass(mini_coco):
    cfg = cfg_of({'test_dataloader.dataset.data_root': f'{mini_coco}/',
                  'test_dataloader.dataset.bbox_file': f'{mini_coco}/test_coco_det_AP_H_56.json',
                  'test_evaluator.ann_file': f'{mini_coco}/test_coco.json'})
    assert check_config(cfg, PSA, 'test') == []


# -- a. data paths -----------------------------------------------------------------------------
@pytest.mark.parametrize('split,mode', [('train', 'train'), ('val', 'train'), ('test', 'test')])
def test_missing_data_root(tmp_path, split, mode):
    root = f'{tmp_path}/nowhere/'
    message = refused({f'{split}_dataloader.dataset.data_root': root}, mode)
    assert message == (f'{root}: data root of {split}_dataloader.dataset does not exist; set '
                       f'{split}_dataloader.dataset.data_root in {PSA} (or with --cfg-options) '
                       f'to the dataset folder')


@pytest.mark.parametrize('split,mode', [('train', 'train'), ('val', 'train'), ('test', 'test')])
def test_missing_annotation_file(split, mode):
    message = refused({f'{split}_dataloader.dataset.ann_file': 'person_keypoints.json'}, mode)
    assert message.startswith(f'{ROOT}person_keypoints.json: annotation file of '
                              f'{split}_dataloader.dataset does not exist; check ')


def test_missing_image_folder():
    message = refused({'train_dataloader.dataset.data_prefix.img': 'train2017/'})
    assert message.startswith(f'{ROOT}train2017/: img folder of train_dataloader.dataset '
                              f'does not exist; check train_dataloader.dataset.data_prefix.img')


def test_image_folder_without_the_images(tmp_path):
    """A folder that exists but is the wrong one (val2017 for train2017)."""
    (tmp_path / 'val2017').mkdir()
    message = refused({'train_dataloader.dataset.data_prefix.img': f'{tmp_path}/val2017/'})
    images = json.load(open(ANN))['images']
    n = len(images)
    assert message.startswith(f"{tmp_path}/val2017/{images[0]['file_name']}: no such image "
                              f'({n} of the {n} images of {ROOT}test_coco.json are missing)')


def test_every_image_is_checked(tmp_path, gt):
    """The last image is missing: named before the run starts (not decoded)."""
    for img in gt['images'][:-1]:
        shutil.copy(os.path.join(TINY_COCO, img['file_name']), tmp_path)
    message = refused({'train_dataloader.dataset.data_prefix.img': f'{tmp_path}/'})
    n = len(gt['images'])
    assert n == 6
    assert message == (f"{tmp_path}/{gt['images'][-1]['file_name']}: no such image (1 of the {n} "
                       f"images of {ROOT}test_coco.json are missing); check train_dataloader."
                       f"dataset.data_prefix.img and data_root in {PSA}")


def test_missing_evaluator_annotation_file(tmp_path):
    message = refused({'val_evaluator.ann_file': f'{tmp_path}/gt.json'})
    assert message == (f'{tmp_path}/gt.json: annotation file of val_evaluator does not exist; '
                       f'check val_evaluator.ann_file in {PSA}')


def test_val_data_is_not_checked_without_validation():
    """train.py --no-validate sets val_cfg/val_dataloader/val_evaluator to None."""
    cfg = cfg_of({'val_dataloader.dataset.data_root': '/nowhere/'})
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    assert check_config(cfg, PSA, 'train') == []
    # and the test split is not checked by training, nor train/val by testing
    cfg = cfg_of({'test_dataloader.dataset.data_root': '/nowhere/'})
    assert check_config(cfg, PSA, 'train') == []
    cfg = cfg_of({'train_dataloader.dataset.data_root': '/nowhere/'})
    assert check_config(cfg, PSA, 'test') == []


# -- b. annotation schema ----------------------------------------------------------------------
def _drop(gt, key):
    return {k: v for k, v in gt.items() if k != key}


def _annotations(gt, fn):
    out = json.loads(json.dumps(gt))
    fn(out['annotations'])
    return out


@pytest.mark.parametrize('make,problem', [
    (lambda gt: '{"images": [', 'not valid JSON: Expecting value: line 1 column 13'),
    (lambda gt: gt['annotations'], 'holds a JSON list, not an object'),
    (lambda gt: _drop(gt, 'categories'), 'no "categories" list'),
    (lambda gt: _drop(gt, 'annotations'), 'no "annotations" list'),
    (lambda gt: {**gt, 'images': [{'id': 1}]}, 'images[0] is not an object with id, file_name'),
    (lambda gt: _annotations(gt, lambda a: [x.pop('keypoints') for x in a]),
     'annotations[0] has no "keypoints" list'),
    (lambda gt: _annotations(gt, lambda a: a[3].update(keypoints=a[3]['keypoints'][:-3])),
     "annotations[3] has 48 keypoint values, the dataset's 17 keypoints need 51"),
    (lambda gt: _annotations(gt, lambda a: a[1].update(image_id=12345)),
     'annotations[1] is of image_id 12345, which is not in "images"'),
    (lambda gt: _annotations(gt, lambda a: a[0].update(bbox=[1, 2])),
     'annotations[0] has no bbox of 4 numbers'),
])
def test_bad_annotation_file(tmp_path, gt, make, problem):
    ann = write(tmp_path / 'ann.json', make(gt))
    message = refused({'train_dataloader.dataset.ann_file': ann})
    assert message.startswith(f'{ann}: not COCO keypoints JSON ({problem}')
    assert message.endswith(f'; train_dataloader.dataset.ann_file in {PSA} must be a COCO '
                            f'keypoints annotation file such as person_keypoints_val2017.json')


# -- c. detections (bbox_file) -----------------------------------------------------------------
FIRST = json.load(open(ANN))['images'][0]
IMAGE_ID = FIRST['id']
DET = {'image_id': IMAGE_ID, 'category_id': 1, 'bbox': [1.0, 2.0, 30.0, 40.0], 'score': 0.9}


@pytest.mark.parametrize('content,problem', [
    (None, 'no such detection file'),
    (f'[{{"image_id": {IMAGE_ID},', 'not valid JSON (Expecting'),
    ({'annotations': [DET]}, 'holds a JSON dict, not a list of detections'),
    ([], 'holds an empty list, not a list of detections'),
    ([DET, {**DET, 'bbox': [1, 2, 3]}],
     f'detection #1 is not a detection ({{"image_id": {IMAGE_ID}'),
    ([{k: v for k, v in DET.items() if k != 'score'}], 'detection #0 is not a detection'),
    ([{k: v for k, v in DET.items() if k != 'category_id'}], 'detection #0 is not a detection'),
    ([[785, 1, 2, 3, 4]], 'detection #0 is not a detection ([785, 1, 2, 3, 4])'),
    ([{**DET, 'image_id': 7}], f'detection #0 is on image_id 7, which {ROOT}test_coco.json '
                               f'does not have'),
])
def test_bad_bbox_file(tmp_path, content, problem):
    dets = str(tmp_path / 'dets.json') if content is None else write(tmp_path / 'dets.json',
                                                                       content)
    message = refused({'test_dataloader.dataset.bbox_file': dets}, 'test')
    assert message.startswith(f'{dets}: {problem}')


def test_bbox_file_on_a_training_set():
    """mmpose's own argument check, raised by the lazily built dataset, becomes one line."""
    message = refused({'train_dataloader.dataset.bbox_file': DETS})
    assert message.startswith(f'{PSA}: train_dataloader.dataset cannot be built (ValueError: '
                              f'CocoDataset has `test_mode==False` while "bbox_file" is only ')


# -- d. PSA settings ---------------------------------------------------------------------------
@pytest.mark.parametrize('psa_cfg,key,problem', [
    (dict(mode='q'), 'model.backbone.psa_cfg.mode', "mode must be 'p' (parallel) or 's' "
                                                     "(sequential), got 'q'"),
    (dict(mode='p', formulation='released'), 'model.backbone.psa_cfg.formulation',
     "formulation must be 'paper' or 'official', got 'released'"),
    (dict(mode='p', impl='fused'), 'model.backbone.psa_cfg.impl', "impl must be 'fast'"),
    (dict(mode='p', ratio=4), 'model.backbone.psa_cfg', "got an unexpected keyword argument "
                                                        "'ratio'"),
])
def test_bad_psa_cfg(psa_cfg, key, problem):
    message = refused({'model.backbone.psa_cfg': psa_cfg})
    assert message.startswith(f'{PSA}: {key} is invalid (')
    assert problem in message and message.endswith('; fix it in the config or with '
                                                   '--cfg-options')


def test_psa_cfg_on_a_backbone_without_psa():
    message = refused({'model.backbone.psa_cfg': dict(mode='p')}, config=BASE)
    assert message == (f'{BASE}: model.backbone.psa_cfg is set, but ResNet has no PSA; use its '
                       f'PSA subclass (e.g. PSAResNet, PSAHRNet)')


@pytest.mark.parametrize('options,message', [
    ({'model.backbone.psa_stages': [True, True]},
     f'{PSA}: model.backbone.psa_stages is invalid (psa_stages must be 4 bools (one per '
     f'stage), got [True, True]; the stages are layer1, layer2, layer3, layer4); fix it in '
     f'the config or with --cfg-options'),
    # ResNet-18's blocks are base_channels wide: 33 gives PSA an odd width
    ({'model.backbone.base_channels': 33},
     f"{PSA}: model.backbone gives a PSA block a width it cannot take (PolarizedSelfAttention: "
     f"in_channels must be a positive even int, got 33); change the backbone's channels or "
     f"its psa_cfg"),
])
def test_psa_errors_of_the_backbone_structure(options, message):
    """What needs the backbone's structure is found while the Runner builds the model, once."""
    cfg = cfg_of(options)
    built = []

    def build(cfg):
        built.append(1)
        return build_model(cfg)        # raises while building the PSA blocks

    with pytest.raises(UserError) as err:
        checked_runner(cfg, PSA, build, 'train')
    assert str(err.value) == message and built == [1]


# -- e. checkpoints ----------------------------------------------------------------------------
class Tiny(nn.Module):
    """A pose-model-shaped module (``backbone``, ``head``) small enough to save in a test."""

    def __init__(self, psa_cfg=None, base=8):
        super().__init__()
        self.backbone = PSAResNet(depth=18, stem_channels=base, base_channels=base,
                                  psa_cfg=psa_cfg)
        self.head = nn.Conv2d(8 * base, 17, 1)


def _bad_checkpoint(kind: str, path) -> str:
    good = path.parent / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(64, 64)}, 'meta': {'epoch': 1}}, good)
    if kind == 'truncated':
        path.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    elif kind == 'cut short':
        path.write_bytes(good.read_bytes()[:-64])
    elif kind == 'text':
        path.write_text('<html>404 Not Found</html>\n')
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'pickled list':
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif kind == 'saved list':
        torch.save([torch.ones(2)], path)
    elif kind == 'no tensors':
        torch.save({'state_dict': {'epoch': 3}}, path)
    return str(path)


BAD_CHECKPOINTS = [
    ('missing', 'no such checkpoint file ({where} in {config}); fix the path or download'),
    ('truncated', 'is truncated (a zip checkpoint without the index at its end, {size} bytes) '
                  '({where} in {config}); copy or download it again'),
    ('cut short', 'is truncated (a zip checkpoint without the index at its end, {size} bytes) '),
    ('text', 'cannot be read as a PyTorch checkpoint (UnpicklingError: invalid load key, '
             "'<'.) ({where} in {config}); the file is truncated or is not a checkpoint: copy "
             'or download it again'),
    ('empty', 'cannot be read as a PyTorch checkpoint (EOFError) ({where} in {config})'),
    ('pickled list', 'cannot be read as a PyTorch checkpoint (RuntimeError: Invalid magic '
                     'number; corrupt file?)'),
    ('saved list', 'holds no state dict (found list) ({where} in {config})'),
    ('no tensors', "holds no state dict of tensors ('epoch' is a int) ({where} in {config})"),
]


@pytest.mark.parametrize('kind,problem', BAD_CHECKPOINTS)
@pytest.mark.parametrize('where', ['load_from', 'model.backbone.init_cfg.checkpoint'])
def test_bad_checkpoint_file(tmp_path, kind, problem, where):
    path = _bad_checkpoint(kind, tmp_path / 'weights.pth')
    cfg = cfg_of()
    if where == 'load_from':
        cfg.load_from = path
    else:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=path)
    with pytest.raises(UserError) as err:
        check_config(cfg, PSA, 'train')
    size = os.path.getsize(path) if os.path.exists(path) else None
    expected = problem.format(where=where, config=PSA, size=size)
    assert str(err.value).startswith(f'{path}: {expected}')
    assert '\n' not in str(err.value)


def test_truncated_checkpoint_to_test(tmp_path):
    path = _bad_checkpoint('truncated', tmp_path / 'epoch_2.pth')
    with pytest.raises(UserError, match=r'epoch_2.pth: is truncated \(a zip checkpoint '):
        check_config(cfg_of({'load_from': path}), PSA, 'test')


@pytest.fixture(scope='module')
def tiny_checkpoints(tmp_path_factory):
    """A baseline (no PSA) checkpoint of :class:`Tiny`, as a Runner saves it, and two that do
    not fit it."""
    folder = tmp_path_factory.mktemp('tiny')
    torch.manual_seed(0)
    base = Tiny().state_dict()
    paths = {'baseline': folder / 'baseline.pth', 'no_head': folder / 'no_head.pth',
             'wider': folder / 'wider.pth'}
    torch.save({'state_dict': base, 'meta': {'epoch': 2}}, paths['baseline'])
    torch.save({'state_dict': {k: v for k, v in base.items() if not k.startswith('head.')}},
               paths['no_head'])
    torch.save({'state_dict': Tiny(base=16).state_dict()}, paths['wider'])
    return {k: str(v) for k, v in paths.items()}, base


def _checkpoints_of(options: dict, mode: str):
    return check_config(cfg_of(options), PSA, mode)


def test_baseline_checkpoint_fits_a_psa_model_for_training(tiny_checkpoints):
    paths, base = tiny_checkpoints
    model = Tiny(psa_cfg=dict(mode='p'))
    [ckpt] = _checkpoints_of({'load_from': paths['baseline']}, 'train')
    assert ckpt.where == 'load_from' and ckpt.module == ''
    assert set(ckpt.state_dict) == set(base)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_weights(model, [ckpt], PSA, 'train')
    # a check: nothing is loaded (mmengine's Runner loads it later)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_baseline_checkpoint_is_refused_for_testing_a_psa_model(tiny_checkpoints):
    paths, _ = tiny_checkpoints
    [ckpt] = _checkpoints_of({'load_from': paths['baseline']}, 'test')
    with pytest.raises(UserError) as err:
        check_weights(Tiny(psa_cfg=dict(mode='p')), [ckpt], PSA, 'test')
    assert str(err.value) == (
        f"{paths['baseline']}: does not fit the model of {PSA}: lacks the 56 PSA keys of the PSA "
        f"config: it was trained with a baseline config; test it with the config it was "
        f"trained with")


def test_psa_checkpoint_is_refused_by_a_baseline_model(tiny_checkpoints, tmp_path):
    """The silent mix-up of the issue: the checkpoint's 56 PSA keys would be ignored."""
    psa = tmp_path / 'psa.pth'
    torch.save({'state_dict': Tiny(psa_cfg=dict(mode='p')).state_dict()}, psa)
    for mode in ('train', 'test'):
        [ckpt] = check_config(cfg_of({'load_from': str(psa)}, BASE), BASE, mode)
        with pytest.raises(UserError) as err:
            check_weights(Tiny(), [ckpt], BASE, mode)
        fix = ('test it with the config it was trained with' if mode == 'test' else
               'load_from must be a checkpoint of this architecture')
        assert str(err.value) == (f'{psa}: does not fit the model of {BASE}: has 56 PSA keys '
                                  f'the baseline config does not have: it was trained with a PSA '
                                  f'config; {fix}')


@pytest.mark.parametrize('name,problem', [
    ('no_head', '2 model keys missing from it (e.g. head.weight, head.bias)'),
    ('wider', '101 keys with other shapes (e.g. backbone.conv1.weight: checkpoint '
              '[16, 3, 7, 7], model [8, 3, 7, 7])'),
])
@pytest.mark.parametrize('mode', ['train', 'test'])
def test_checkpoint_that_does_not_fit(tiny_checkpoints, name, problem, mode):
    paths, _ = tiny_checkpoints
    [ckpt] = _checkpoints_of({'load_from': paths[name]}, mode)
    with pytest.raises(UserError) as err:
        check_weights(Tiny(psa_cfg=dict(mode='p')), [ckpt], PSA, mode)
    if mode == 'test':      # the PSA keys are missing too: only training may leave them out
        problem = (f'lacks the 56 PSA keys of the PSA config: it was trained with a baseline '
                   f'config; {problem}; test it with the config it was trained with')
    else:
        problem += '; load_from must be a checkpoint of this architecture'
    assert str(err.value) == f'{paths[name]}: does not fit the model of {PSA}: {problem}'



def test_pretrained_backbone_with_prefix(tiny_checkpoints):
    """init_cfg=Pretrained, prefix='backbone.': a full model's checkpoint for the backbone."""
    paths, _ = tiny_checkpoints
    model = Tiny(psa_cfg=dict(mode='s'))
    init = dict(type='Pretrained', checkpoint=paths['baseline'], prefix='backbone.')
    [ckpt] = check_config(_with_init(init), PSA, 'train')
    assert ckpt.module == 'backbone' and ckpt.where == 'model.backbone.init_cfg.checkpoint'
    assert not any(k.startswith('backbone.') for k in ckpt.state_dict)
    check_weights(model, [ckpt], PSA, 'train')
    # testing does not initialise weights, so it does not read init_cfg
    assert check_config(_with_init(init), PSA, 'test') == []
    [wider] = check_config(_with_init({**init, 'checkpoint': paths['wider']}), PSA, 'train')
    with pytest.raises(UserError, match=r'model.backbone.init_cfg.checkpoint must be a '
                                        r'checkpoint of this architecture$'):
        check_weights(model, [wider], PSA, 'train')
    with pytest.raises(UserError, match=r"has no keys under prefix 'neck.' \(model.backbone."
                                        r"init_cfg.checkpoint in "):
        check_config(_with_init({**init, 'prefix': 'neck'}), PSA, 'train')


def _with_init(init: dict):
    cfg = cfg_of()
    cfg.model.backbone.init_cfg = init
    return cfg


def test_resume_checkpoint_is_checked(tmp_path, tiny_checkpoints):
    """--resume CKPT (load_from + resume) and --resume (the work dir's last_checkpoint): read
    like any checkpoint, and it must fit exactly (a PSA run does not resume from a baseline)."""
    path = _bad_checkpoint('truncated', tmp_path / 'epoch_1.pth')
    message = refused({'load_from': path, 'resume': True})
    assert message.startswith(f'{path}: is truncated (a zip checkpoint without the index at '
                              f'its end, ') and message.endswith(
        ' bytes) (the checkpoint --resume continues from); copy or download it again')
    paths, _ = tiny_checkpoints
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(paths['baseline'])
    [ckpt] = check_config(cfg_of({'resume': True, 'work_dir': str(work)}), PSA, 'train')
    assert ckpt.source == paths['baseline'] and ckpt.where == '--resume'
    with pytest.raises(UserError) as err:
        check_weights(Tiny(psa_cfg=dict(mode='p')), [ckpt], PSA, 'train')
    assert str(err.value) == (f"{paths['baseline']}: does not fit the model of {PSA}: lacks the "
                              f"56 PSA keys of the PSA config: it was trained with a baseline "
                              f"config; resume from a checkpoint of a run of this config")
    # a work dir without checkpoints: mmengine starts from scratch
    assert check_config(cfg_of({'resume': True, 'work_dir': str(tmp_path)}), PSA, 'train') == []


# -- f. published checkpoints, publish_model.py ------------------------------------------------
def _misnamed_release(tmp_path):
    """A checkpoint named like a release whose hash is not the one in its name."""
    weights = tmp_path / 'w.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}, 'meta': {}}, weights)
    sha = sha256_of(str(weights))
    bad = tmp_path / f'tiny-{"0" * 8 if sha[:8] != "0" * 8 else "1" * 8}_20260101.pth'
    shutil.copy(weights, bad)
    return bad, sha


def test_tampered_published_checkpoint_is_refused_by_test_py(tmp_path, capsys):
    bad, sha = _misnamed_release(tmp_path)
    out = tmp_path / 'metrics.json'
    with pytest.raises(SystemExit) as exc:
        test_tool.main([PSA, str(bad), '--out', str(out), '--work-dir', str(tmp_path / 'w')])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == (f'error: {bad}: sha256 starts with {sha[:8]}, the name says {bad.name[5:13]}; '
                   f'the file is corrupt or was changed: download it again\n')
    assert not out.exists() and not (tmp_path / 'w').exists()


def test_tampered_published_checkpoint_is_refused_by_the_demo(tmp_path, capsys):
    bad, sha = _misnamed_release(tmp_path)
    out = tmp_path / 'demo.png'
    with pytest.raises(SystemExit) as exc:
        demo_tool.main([PSA, str(bad), f'{TINY_COCO}/{FIRST["file_name"]}', '--out', str(out)])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        f'error: {bad}: sha256 starts with {sha[:8]}, the name says {bad.name[5:13]}; the file '
        f'is corrupt or was changed: download it again\n')
    assert not out.exists()


@pytest.mark.parametrize('kind,problem', BAD_CHECKPOINTS)
def test_publish_refuses_a_bad_training_checkpoint(tmp_path, capsys, kind, problem):
    src = _bad_checkpoint(kind, tmp_path / 'epoch_2.pth')
    with pytest.raises(SystemExit) as exc:
        publish_tool.main([src, str(tmp_path / 'release' / 'tiny'), '--no-zoo'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    # the same checks and words as for a checkpoint a config names
    size = os.path.getsize(src) if os.path.exists(src) else None
    expected = problem.replace('({where} in {config})', '(the training checkpoint to publish)')
    assert err.startswith(f'error: {src}: {expected.format(size=size)}')
    assert err.count('\n') == 1
    assert not glob.glob(str(tmp_path / 'release' / '*')) \
        and not glob.glob(str(tmp_path / 'release' / '.*'))


# -- the scripts: one stderr line, exit code 2, nothing written --------------------------------
def run(*cmd, cwd):
    """A script from an unrelated directory (no PYTHONPATH), as a user would run it."""
    return subprocess.run([sys.executable, *map(str, cmd)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)


def test_train_script_missing_data_root(tmp_path):
    work = tmp_path / 'work'
    res = run(f'{REPO}/scripts/train.py', PSA, '--work-dir', work, '--cfg-options',
              f'train_dataloader.dataset.data_root={tmp_path}/coco/', cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr == (f'error: {tmp_path}/coco/: data root of train_dataloader.dataset does '
                          f'not exist; set train_dataloader.dataset.data_root in {PSA} (or with '
                          f'--cfg-options) to the dataset folder\n')
    assert not work.exists()            # before the Runner: not even the work dir


def test_train_script_load_from_that_does_not_fit(tmp_path, tiny_checkpoints, capsys):
    """Found after the Runner built the model, before train() builds data or loads anything."""
    paths, _ = tiny_checkpoints
    work = tmp_path / 'work'
    res = in_process(capsys, train_tool.main, PSA, '--work-dir', work, '--cfg-options',
                     f'load_from={paths["baseline"]}')
    assert res.returncode == 2, res.stderr[-3000:]
    [line] = res.stderr.splitlines()
    assert line.startswith(f'error: {paths["baseline"]}: does not fit the model of {PSA}: ')
    assert 'keys with other shapes (e.g. backbone.conv1.weight: checkpoint [8, 3, 7, 7], ' \
           'model [64, 3, 7, 7])' in line and line.endswith('load_from must be a checkpoint '
                                                            'of this architecture')
    assert not glob.glob(str(work / '**' / '*.pth'), recursive=True)
    assert 'Epoch(train)' not in res.stdout


@pytest.mark.parametrize('case', ['truncated checkpoint', 'bad bbox_file'])
def test_test_script_bad_input(tmp_path, case, capsys):
    ckpt = _bad_checkpoint('truncated', tmp_path / 'epoch_2.pth')
    extra, expected = [], f'error: {ckpt}: is truncated (a zip checkpoint without the index'
    if case == 'bad bbox_file':
        dets = write(tmp_path / 'dets.json', {'image_id': 785})
        extra = ['--cfg-options', f'test_dataloader.dataset.bbox_file={dets}']
        expected = f'error: {dets}: holds a JSON dict, not a list of detections'
    out, results = tmp_path / 'metrics.json', tmp_path / 'results.json'
    res = in_process(capsys, test_tool.main, PSA, ckpt, '--work-dir', tmp_path / 'work',
                     '--out', out, '--coco-results', results, *extra)
    assert res.returncode == 2, res.stderr[-3000:]
    [line] = res.stderr.splitlines()
    assert line.startswith(expected)
    assert not out.exists() and not results.exists() and not (tmp_path / 'work').exists()


def test_cfg_options_that_do_not_fit(tmp_path, capsys):
    res = in_process(capsys, train_tool.main, PSA, '--work-dir', tmp_path / 'work',
                     '--cfg-options', 'model.backbone.init_cfg.checkpoint=x.pth')
    assert res.returncode == 2
    [line] = res.stderr.splitlines()
    assert line.startswith(f'error: {PSA}: --cfg-options do not fit the config: init_cfg=')
    assert line.endswith('You may set `_delete_=True` to ignore the base config.')
    assert not (tmp_path / 'work').exists()
