"""A new user's mistakes, through the entry points they call: each ends with a non-zero exit
code and one line naming the culprit and the fix, and writes nothing (issue 14).

In-process ``main(argv)`` calls of psa_pose.tools on the tiny configs of tests/configs and the
generated data they read (tests/conftest.py); the runs that train are few and short, the
subprocess ones are marked slow.
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import sys

import pytest
import torch

from psa_pose import zoo
from psa_pose.config import build_model, load_config
from psa_pose.deploy.publish import load_published
from psa_pose.tools import benchmark as benchmark_tool
from psa_pose.tools import demo as demo_tool
from psa_pose.tools import export_onnx as export_tool
from psa_pose.tools import get_flops as flops_tool
from psa_pose.tools import publish as publish_tool
from psa_pose.tools import test as test_tool
from psa_pose.tools import train as train_tool
from tests.conftest import (REPO, forget_mmengine_instances, run_script,
                            tiny_coco_dir)

TINY_COCO = tiny_coco_dir()     # read while this module is collected

CONFIGS = os.path.join(REPO, 'tests', 'configs')
BASE = os.path.join(CONFIGS, 'td-hm_res18_1xb2-2e_minicoco-128x96.py')
PSA = os.path.join(CONFIGS, 'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py')
NARROW = os.path.join(CONFIGS, 'td-hm_res18-w16_1xb2-3e_minicoco-128x96.py')
# the generated data the tiny configs train on: a plain clone runs every case
ANN = os.path.join(TINY_COCO, 'test_coco.json')
with open(ANN) as _f:
    _GT = json.load(_f)
IMAGE = os.path.join(TINY_COCO, _GT['images'][0]['file_name'])
N_PEOPLE = len(_GT['annotations'])          # all with keypoints
ZOO_FILES = (zoo.ZOO_README, zoo.RESULTS_FILE, zoo.METAFILE)


def refused(capsys, main, argv, code=2) -> str:
    """The one stderr line of ``main(argv)``, which must exit with ``code``."""
    try:
        got = main([str(a) for a in argv])
    except SystemExit as e:
        got = e.code
    assert got == code
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.endswith('\n'), err[-3000:]
    return err[:-1]


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Random-weight checkpoints of the tiny baseline and its PSA twin, as mmengine saves
    them (``state_dict`` + ``meta``)."""
    folder = tmp_path_factory.mktemp('ckpts')
    paths = {}
    for name, config in (('base', BASE), ('psa', PSA)):
        torch.manual_seed(0)
        model = build_model(load_config(config))
        paths[name] = str(folder / f'{name}.pth')
        torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 2}}, paths[name])
    return paths


# -- 1. a checkpoint that does not fit its config -------------------------------------------
PSA_IN_BASE = ('has 56 PSA keys the baseline config does not have: it was trained with a PSA '
               'config')
BASE_IN_PSA = ('lacks the 56 PSA keys of the PSA config: it was trained with a baseline '
               'config')


def test_test_py_refuses_a_psa_checkpoint_on_the_baseline_config(capsys, tmp_path,
                                                                 checkpoints):
    """Was: exit 0 and metrics labelled as the baseline ("ignored 56 checkpoint keys")."""
    out = tmp_path / 'm.json'
    line = refused(capsys, test_tool.main, [BASE, checkpoints['psa'], '--out', out,
                                            '--work-dir', tmp_path / 'w'])
    assert line == (f"error: {checkpoints['psa']}: does not fit the model of {BASE}: "
                    f"{PSA_IN_BASE}; test it with the config it was trained with")
    assert not out.exists()


def test_demo_refuses_a_checkpoint_of_another_architecture(capsys, tmp_path, checkpoints):
    """Was: boxes without skeletons, exit 0."""
    out = tmp_path / 'demo.png'
    line = refused(capsys, demo_tool.main, [PSA, checkpoints['base'], IMAGE, '--out', out])
    assert line == (f"error: {checkpoints['base']}: does not fit the model of {PSA}: "
                    f"{BASE_IN_PSA}; draw with the config it was trained with")
    assert not out.exists()


def test_export_refuses_a_checkpoint_of_another_architecture(capsys, tmp_path, checkpoints):
    out = tmp_path / 'm.onnx'
    line = refused(capsys, export_tool.main, [BASE, checkpoints['psa'], '--out', out])
    assert line == (f"error: {checkpoints['psa']}: does not fit the model of {BASE}: "
                    f"{PSA_IN_BASE}; export it with the config it was trained with")
    assert not out.exists()


def test_train_refuses_to_resume_from_another_architecture(capsys, tmp_path, checkpoints):
    work = tmp_path / 'work'
    line = refused(capsys, train_tool.main, [PSA, '--work-dir', work, '--resume',
                                             checkpoints['base']])
    assert line == (f"error: {checkpoints['base']}: does not fit the model of {PSA}: "
                    f"{BASE_IN_PSA}; resume from a checkpoint of a run of this config")
    assert not glob.glob(f'{work}/**/*.pth', recursive=True)


def test_load_from_with_another_architectures_keys(capsys, tmp_path, checkpoints):
    """A PSA checkpoint as load_from of the baseline: its PSA keys would be dropped."""
    work = tmp_path / 'work'
    line = refused(capsys, train_tool.main, [BASE, '--work-dir', work, '--cfg-options',
                                             f"load_from={checkpoints['psa']}"])
    assert line == (f"error: {checkpoints['psa']}: does not fit the model of {BASE}: "
                    f"{PSA_IN_BASE}; load_from must be a checkpoint of this architecture")
    assert not glob.glob(f'{work}/**/*.pth', recursive=True)


# -- 2. publish_model.py verifies what it is told ----------------------------------------------
@pytest.fixture
def zoo_unchanged():
    before = [open(f, 'rb').read() for f in ZOO_FILES]
    yield
    assert [open(f, 'rb').read() for f in ZOO_FILES] == before


def _metrics(path, checkpoint, config, **extra):
    sha = hashlib.sha256(open(checkpoint, 'rb').read()).hexdigest()
    data = {'config': os.path.basename(config)[:-3], 'checkpoint_sha256': sha, 'coco/AP': 0.5,
            **extra}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return str(path)


def test_publish_refuses_a_checkpoint_that_does_not_fit_config(capsys, tmp_path, checkpoints,
                                                              zoo_unchanged):
    rel = tmp_path / 'rel'
    line = refused(capsys, publish_tool.main, [checkpoints['psa'], rel / 'x', '--config', BASE])
    assert line == (f"error: {checkpoints['psa']}: does not fit the model of {BASE}: "
                    f"{PSA_IN_BASE}; give --config the config it was trained with")
    assert not rel.exists()


@pytest.mark.parametrize('case', ['another checkpoint', 'another config', 'no sha256'])
def test_publish_refuses_metrics_of_something_else(capsys, tmp_path, checkpoints, case,
                                                   zoo_unchanged):
    metrics = tmp_path / 'm.json'
    if case == 'another checkpoint':
        _metrics(metrics, checkpoints['base'], PSA)
        sha = hashlib.sha256(open(checkpoints['base'], 'rb').read()).hexdigest()
        own = hashlib.sha256(open(checkpoints['psa'], 'rb').read()).hexdigest()
        expected = (f'measured another checkpoint (sha256 {sha[:8]}, {checkpoints["psa"]} has '
                    f'{own[:8]}); publish the checkpoint it measured, or test this one with '
                    f'scripts/test.py --out')
    elif case == 'another config':
        _metrics(metrics, checkpoints['psa'], NARROW)
        expected = (f"measured the checkpoint with config '{os.path.basename(NARROW)[:-3]}', "
                    f"not '{os.path.basename(PSA)[:-3]}'; give --config the config it was "
                    f"tested with, or test it again with this one")
    else:                    # eval_coco.py's file, or one of an older test.py
        metrics.write_text(json.dumps({'AP': 0.5}))
        expected = ('does not say which checkpoint it measured (no checkpoint_sha256); give '
                    'the metrics file that scripts/test.py CONFIG CKPT --out wrote for this '
                    'checkpoint')
    rel = tmp_path / 'rel'
    line = refused(capsys, publish_tool.main, [checkpoints['psa'], rel / 'x', '--config', PSA,
                                               '--metrics', metrics])
    assert line == f'error: {metrics}: {expected}'
    assert not rel.exists()


def test_publish_refuses_a_release_whose_name_is_not_its_hash(capsys, tmp_path, checkpoints,
                                                             zoo_unchanged):
    release = tmp_path / 'tiny-00000000_20260101.pth'
    shutil.copy(checkpoints['psa'], release)
    rel = tmp_path / 'rel'
    line = refused(capsys, publish_tool.main, [release, rel / 'x', '--config', PSA])
    assert line.startswith(f'error: {release}: sha256 starts with ')
    assert line.endswith(', the name says 00000000; the file is corrupt or was changed: '
                         'download it again')
    assert not rel.exists()


def test_publish_accepts_what_fits(capsys, tmp_path, checkpoints):
    metrics = _metrics(tmp_path / 'm.json', checkpoints['psa'], PSA, config_file=PSA)
    assert publish_tool.main([checkpoints['psa'], str(tmp_path / 'rel' / 'x'), '--metrics',
                              metrics, '--no-zoo']) == 0
    [release] = glob.glob(str(tmp_path / 'rel' / 'x-*_*.pth'))
    meta = load_published(release)['meta']
    assert meta['config'] == os.path.basename(PSA)[:-3] and meta['metrics'] == {'AP': 0.5}


# -- 3. data ---------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def gt():
    with open(ANN) as f:
        return json.load(f)


def _data_copy(folder, gt, change=None):
    """The images and an edited copy of their annotations in ``folder``."""
    folder.mkdir(exist_ok=True)
    for img in gt['images']:
        shutil.copy(os.path.join(TINY_COCO, img['file_name']), folder)
    data = json.loads(json.dumps(gt))
    if change:
        change(data)
    (folder / 'ann.json').write_text(json.dumps(data))
    return str(folder / 'ann.json')


def _data_options(ann):
    root = os.path.dirname(ann) + '/'
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.dataset.ann_file=ann.json']
    return opts + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def _dogs(data, n=None):
    data['categories'].append({'id': 18, 'name': 'dog', 'supercategory': 'animal',
                               'keypoints': data['categories'][0]['keypoints']})
    for ann in data['annotations'][:n]:
        ann['category_id'] = 18


@pytest.mark.parametrize('change,problem', [
    (lambda d: d.update(annotations=[]), 'the "annotations" list is empty, so there is no '
     'person to train or test on; '),
    (_dogs, f'holds no person annotations ({N_PEOPLE} of dog); '),
    (lambda d: _dogs(d, 3), 'holds 3 annotations of other categories than person (3 of dog), '
     'which the COCO metric would count; '),
    (lambda d: d['categories'][0].update(keypoints=['nose'] * 14), 'its person category has 14 '
     'keypoint names, the dataset expects 17; '),
])
def test_test_py_refuses_annotations_that_are_not_coco_persons(capsys, tmp_path, gt, change,
                                                                problem, checkpoints):
    ann = _data_copy(tmp_path / 'data', gt, change)
    out = tmp_path / 'm.json'
    line = refused(capsys, test_tool.main, [BASE, checkpoints['base'], '--out', out,
                                            '--work-dir', tmp_path / 'w', '--cfg-options',
                                            *_data_options(ann)])
    assert line.startswith(f'error: {ann}: {problem}')
    assert not out.exists() and not (tmp_path / 'w').exists()


def test_a_mixed_training_file_keeps_only_the_persons(tmp_path, gt, monkeypatch):
    """For training a file that mixes categories is used: its persons, and a log line."""
    from mmpose.registry import DATASETS

    from psa_pose.data import coco
    from psa_pose.engine.preflight import check_config
    ann = _data_copy(tmp_path / 'data', gt, lambda d: _dogs(d, 3))
    cfg = load_config(BASE, dict(o.split('=', 1) for o in _data_options(ann)[:2]))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    assert check_config(cfg, BASE, 'train') == []
    coco.use_checked_loading(cfg)
    assert cfg.train_dataloader.dataset.type == 'CocoPersonDataset'
    logged = []
    monkeypatch.setattr(coco, 'print_log', lambda msg, **kw: logged.append(msg))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    mmpose_own = DATASETS.build({**cfg.train_dataloader.dataset, 'type': 'CocoDataset'})
    # (mmpose drops people without labelled keypoints, as it does for any file; here all have)
    assert (len(mmpose_own), len(dataset)) == (N_PEOPLE, N_PEOPLE - 3) == (12, 9)
    assert {int(dataset.get_data_info(i)['category_id']) for i in range(len(dataset))} == {1}
    assert logged == [f'{ann}: using the {N_PEOPLE - 3} person annotations; dropped 3 of other '
                      f'categories']


def _corrupt(folder, gt, index=2):
    bad = folder / gt['images'][index]['file_name']
    bad.write_bytes(bad.read_bytes()[:2000])        # a download cut short
    return bad


def test_an_image_that_cannot_be_decoded_ends_training_in_one_line(capsys, tmp_path, gt):
    """Not the first image: found by the dataloader after some iterations, not by the
    pre-flight (which checks that every image exists, without decoding)."""
    ann = _data_copy(tmp_path / 'data', gt)
    bad = _corrupt(tmp_path / 'data', gt)
    work = tmp_path / 'work'
    line = refused(capsys, train_tool.main, [
        NARROW, '--work-dir', work, '--no-validate', '--cfg-options', *_data_options(ann)[:2],
        'train_cfg.max_epochs=1', 'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=2'])
    assert line.startswith(f'error: {bad}: cannot be decoded as an image (the file is corrupt '
                           f'or is not an image): training stopped at iteration ')
    checkpoint = line.split('the last checkpoint is ')[1].split(';')[0] \
        if 'the last checkpoint is' in line else None
    assert line.endswith('; replace or remove the image, or add --skip-bad-images to skip '
                         'such images')
    assert checkpoint is None or os.path.isfile(checkpoint)
    assert not glob.glob(f'{work}/.*')

    # --skip-bad-images: the run goes on and the log counts the skipped images
    forget_mmengine_instances()
    line_count = 0
    assert train_tool.main([NARROW, '--work-dir', str(work / 'skip'), '--no-validate',
                            '--skip-bad-images', '--cfg-options', *_data_options(ann)[:2],
                            'train_cfg.max_epochs=1']) == 0
    log = open(glob.glob(f'{work}/skip/*/*.log')[0]).read()
    line_count = log.count(f'skipped {bad}: cannot be decoded as an image')
    assert line_count >= 1 and ' images skipped so far' in log
    assert os.path.isfile(work / 'skip' / 'epoch_1.pth')


def test_an_image_that_cannot_be_decoded_ends_testing_in_one_line(capsys, tmp_path, gt,
                                                                   checkpoints):
    ann = _data_copy(tmp_path / 'data', gt)
    bad = _corrupt(tmp_path / 'data', gt)
    out = tmp_path / 'm.json'
    line = refused(capsys, test_tool.main, [BASE, checkpoints['base'], '--out', out,
                                            '--work-dir', tmp_path / 'w', '--cfg-options',
                                            *_data_options(ann)])
    assert line == (f'error: {bad}: cannot be decoded as an image (the file is corrupt or is '
                    f'not an image): testing stopped, no metrics written; replace the image (a '
                    f'test set with an image left out is another test set)')
    assert not out.exists()


def test_the_demo_refuses_an_image_that_cannot_be_decoded(capsys, tmp_path, checkpoints):
    image = tmp_path / '000000000785.jpg'
    image.write_bytes(open(IMAGE, 'rb').read()[:2000])
    out = tmp_path / 'demo.png'
    line = refused(capsys, demo_tool.main, [BASE, checkpoints['base'], image, '--out', out])
    assert line == (f'error: {image}: cannot be decoded as an image (the file is corrupt or is '
                    f'not an image); give a JPEG or PNG file')
    assert not out.exists()


def test_the_demo_refuses_a_box_outside_the_image(capsys, tmp_path, checkpoints):
    """Boxes of another image (or x1, y1, x2, y2 taken for x, y, w, h): not "1 people"."""
    import cv2
    height, width = cv2.imread(IMAGE).shape[:2]
    boxes = tmp_path / 'boxes.json'
    boxes.write_text(f'[[10, 10, 50, 80], [{width + 5}, 20, 40, 90]]')
    out = tmp_path / 'demo.png'
    line = refused(capsys, demo_tool.main, [BASE, checkpoints['base'], IMAGE, '--bboxes',
                                            boxes, '--out', out])
    assert line == (f'error: {IMAGE}: box #1 [{width + 5}, 20, 40, 90] lies outside the '
                    f'{width}x{height} image; were the boxes made for another image (or given '
                    f'as x1, y1, x2, y2)?')
    assert not out.exists()


# -- 4. config mistakes: the same line from every entry point ---------------------------------
def _entry_points(config, tmp_path, checkpoint):
    out = tmp_path / 'out'
    return {
        'train': (train_tool.main, [config, '--work-dir', tmp_path / 'w']),
        'test': (test_tool.main, [config, checkpoint, '--out', out, '--work-dir',
                                  tmp_path / 'w']),
        'get_flops': (flops_tool.main, [config]),
        'benchmark': (benchmark_tool.main, ['--configs', config, '--quick', '--no-block',
                                            '--out', out]),
        'demo': (demo_tool.main, [config, checkpoint, IMAGE, '--out', out]),
        'export_onnx': (export_tool.main, [config, checkpoint, '--out', out]),
    }


ENTRY_POINTS = ['train', 'test', 'get_flops', 'benchmark', 'demo', 'export_onnx']
MISTAKES = {
    'syntax error': ("train_cfg = dict(max_epochs=3\nx = 1\n",
                     "{cfg}:2: syntax error ('(' was never closed); fix line 2 of the config "
                     "file"),
    'misspelt key': ("train_cfg = dict(max_epoch=3)\n",
                     "{cfg}: train_cfg.max_epoch: EpochBasedTrainLoop takes no argument "
                     "'max_epoch' (did you mean 'max_epochs'?); fix it in the config or with "
                     "--cfg-options"),
    'bad psa_cfg': ("model = dict(backbone=dict(psa_cfg=dict(mode='q')))\n",
                    "{cfg}: model.backbone.psa_cfg.mode is invalid (PolarizedSelfAttention: "
                    "mode must be 'p' (parallel) or 's' (sequential), got 'q'; 'ch' and 'sp' "
                    "(one branch) are for ablations); fix it in the config or with "
                    "--cfg-options"),
    'unregistered type': ("model = dict(backbone=dict(type='PSAResnet'))\n",
                          "{cfg}: model.backbone.type 'PSAResnet' is not registered in "
                          "mmpose's model registry (did you mean 'PSAResNet'?); fix it in the "
                          "config or with --cfg-options (or add the module that registers it "
                          "to custom_imports)"),
}


@pytest.mark.parametrize('mistake', sorted(MISTAKES))
@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_config_mistakes_are_one_line_everywhere(capsys, tmp_path, checkpoints, mistake,
                                                  entry):
    body, message = MISTAKES[mistake]
    config = tmp_path / 'cfg.py'
    config.write_text(f"_base_ = '{PSA}'\n{body}")
    main, argv = _entry_points(str(config), tmp_path, checkpoints['psa'])[entry]
    line = refused(capsys, main, argv)
    syntax = mistake == 'syntax error'
    # the syntax error names the file and line of the error
    assert line == 'error: ' + message.format(cfg=config if syntax else config)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'w').exists()


@pytest.mark.parametrize('entry', ['train', 'test'])
def test_misspelt_cfg_option(capsys, tmp_path, checkpoints, entry):
    main, argv = _entry_points(PSA, tmp_path, checkpoints['psa'])[entry]
    line = refused(capsys, main, argv + ['--cfg-options', 'train_dataloader.batch_szie=4'])
    assert line == (f"error: {PSA}: train_dataloader.batch_szie: DataLoader takes no argument "
                    f"'batch_szie' (did you mean 'batch_size'?); fix it in the config or with "
                    f"--cfg-options")
    assert not (tmp_path / 'w').exists()


# -- 5. the run environment -------------------------------------------------------------------
def test_amp_on_a_cpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    line = refused(capsys, train_tool.main, [PSA, '--work-dir', tmp_path / 'w', '--amp'])
    assert line == ("error: --amp: no GPU is visible, and mixed precision here is mmengine's "
                    "AmpOptimWrapper, which runs only on GPUs; drop --amp to train in float32 "
                    "on the CPU")
    assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('main,argv', [
    (train_tool.main, [PSA]), (test_tool.main, [PSA, 'x.pth', '--out', 'm.json'])])
def test_launcher_pytorch_outside_torchrun(capsys, tmp_path, monkeypatch, main, argv):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, main, argv + ['--launcher', 'pytorch'])
    assert line == ('error: --launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not '
                    'set, so this process was not started by its launcher; start it with '
                    'torchrun: bash scripts/dist_train.sh CONFIG GPUS (dist_test.sh), or use '
                    '--launcher none for one process')
    assert os.listdir(tmp_path) == []


def _interrupt_args(work):
    return [NARROW, '--work-dir', work, '--no-validate', '--cfg-options',
            'default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.interval=2']


@pytest.fixture
def sigint_as_in_a_terminal():
    """Python's own SIGINT handler, as a process started from a terminal has it. A test run
    started in the background by a non-interactive shell (`bash .ci/run &`) begins with SIGINT
    ignored, which Python keeps and every child inherits: Ctrl-C could not reach the run."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_is_one_line_and_exit_130(capsys, tmp_path, monkeypatch,
                                         sigint_as_in_a_terminal):
    """Ctrl-C after iteration 3 of epoch 1; checkpoints every 2 iterations: the line names the
    last one, and nothing is half-written."""
    monkeypatch.setenv('PSA_FAULT_SIGINT_AFTER', '1:3')
    work = tmp_path / 'work'
    line = refused(capsys, train_tool.main, _interrupt_args(work), code=130)
    assert line == (f'interrupted at iteration 3; the last checkpoint is {work}/iter_2.pth; '
                    f'continue with --resume')
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']
    assert not glob.glob(f'{work}/.*')


@pytest.mark.slow
def test_ctrl_c_through_the_script(tmp_path, sigint_as_in_a_terminal):
    """The same with a real SIGINT to scripts/train.py: no traceback."""
    work = tmp_path / 'work'
    res = run_script(sys.executable, f'{REPO}/scripts/train.py', *_interrupt_args(work),
                     cwd=tmp_path, check=False, timeout=600,
                     env={**os.environ, 'PYTHONWARNINGS': 'ignore',
                          'PSA_FAULT_SIGINT_AFTER': '1:3'})
    assert res.returncode == 130, res.stderr[-3000:]
    assert res.stderr.splitlines() == [f'interrupted at iteration 3; the last checkpoint is '
                                       f'{work}/iter_2.pth; continue with --resume']
    assert signal.SIGINT                # the fault hook sends it; Python raises in main
