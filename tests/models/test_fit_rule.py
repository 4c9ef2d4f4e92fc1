"""One rule for whether a checkpoint fits (psa_pose.models.checkpoint): the same checkpoints fed
to every entry point that takes one get the same verdict and the same words.

Entry points: a PSA backbone's ``init_cfg=Pretrained`` while the model initialises, the
pre-flight of ``train.py --check`` (``load_from``), ``test.py``, the demo, ONNX export and
publish, all in process on the tiny configs of tests/configs. A baseline checkpoint may
initialise a PSA model for training (its PSA keys keep their own init) but never stands in for
one that is evaluated, drawn, exported or released.
"""
import os
import re
import shutil

import pytest
import torch

from psa_pose.config import build_model, load_config
from psa_pose.models.checkpoint import CheckpointMismatchError
from psa_pose.tools import demo as demo_tool
from psa_pose.tools import export_onnx as export_tool
from psa_pose.tools import publish as publish_tool
from psa_pose.tools import test as test_tool
from psa_pose.tools import train as train_tool
from psa_pose.utils import UserError
from tests.tools.test_mistakes import BASE, BASE_IN_PSA, IMAGE, NARROW, PSA, PSA_IN_BASE

# the words each kind of checkpoint gets wherever it is refused (the problem, before the fix);
# the backbone's init_cfg compares backbone keys (no 'backbone.' prefix), the rest whole models
NARROW_IN_PSA = {
    'init_cfg': '100 keys with other shapes (e.g. conv1.weight: checkpoint [16, 3, 7, 7], '
                'model [64, 3, 7, 7])',
    'train_check': '116 keys with other shapes (e.g. backbone.conv1.weight: checkpoint '
                   '[16, 3, 7, 7], model [64, 3, 7, 7])',
    'evaluate': f'{BASE_IN_PSA}; 116 keys with other shapes (e.g. backbone.conv1.weight: '
                f'checkpoint [16, 3, 7, 7], model [64, 3, 7, 7])'}
TRUNCATED = re.compile(r'is truncated \(a zip checkpoint without the index at its end, \d+ '
                       r'bytes\)')
RELEASE = re.compile(r'sha256 starts with [0-9a-f]{8}, the name says deadbeef; the file is '
                     r'corrupt or was changed: download it again')


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fit')
    paths = {}
    for name, config in (('base', BASE), ('psa', PSA), ('other', NARROW)):
        torch.manual_seed(0)
        paths[name] = str(folder / f'{name}.pth')
        torch.save({'state_dict': build_model(load_config(config)).state_dict(),
                    'meta': {'epoch': 2}}, paths[name])
    with open(paths['psa'], 'rb') as f:
        data = f.read()
    paths['truncated'] = str(folder / 'truncated.pth')
    with open(paths['truncated'], 'wb') as f:
        f.write(data[:len(data) // 2])
    paths['release'] = str(folder / 'psa-deadbeef_20260101.pth')
    shutil.copyfile(paths['psa'], paths['release'])
    return paths


def _tool(capsys, main, argv):
    """(verdict, stderr line) of an in-process tool call."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    return ('refused', err[-1]) if code else ('accepted', '')


def init_cfg(capsys, tmp_path, ckpt):
    """The PSA backbone's own init from a pose checkpoint (``prefix='backbone.'``)."""
    cfg = load_config(PSA)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.')
    model = build_model(cfg, pretrained=True)
    try:
        model.backbone.init_weights()
    except (CheckpointMismatchError, UserError) as e:
        return 'refused', str(e)
    return 'accepted', ''


def train_check(capsys, tmp_path, ckpt):
    return _tool(capsys, train_tool.main, [PSA, '--check', '--work-dir', tmp_path / 'w',
                                           '--cfg-options', f'load_from={ckpt}'])


def run_test_py(capsys, tmp_path, ckpt):
    return _tool(capsys, test_tool.main, [PSA, ckpt, '--check', '--work-dir', tmp_path / 'w'])


def demo(capsys, tmp_path, ckpt):
    return _tool(capsys, demo_tool.main, [PSA, ckpt, IMAGE, '--out', tmp_path / 'd.png'])


def export(capsys, tmp_path, ckpt):
    return _tool(capsys, export_tool.main, [PSA, ckpt, '--out', tmp_path / 'm.onnx'])


def publish(capsys, tmp_path, ckpt):
    return _tool(capsys, publish_tool.main, [ckpt, tmp_path / 'rel' / 'x', '--config', PSA,
                                             '--no-zoo'])


INITIALISE = [init_cfg, train_check]           # a baseline checkpoint may start a PSA model
EVALUATE = [run_test_py, demo, export, publish]    # only a checkpoint of this model


def _problem(line: str) -> str:
    """The words about the checkpoint: after 'does not fit the model[ of CONFIG]: ' up to the
    entry point's own advice (after the last '; ', or mmengine-style '. Check ...')."""
    m = re.search(r'does not fit the model(?: of \S+)?: (.*)', line)
    if not m:
        return line
    text = m.group(1)
    text = text.split('. Check that the checkpoint')[0]
    return text.rsplit('; ', 1)[0] if 'Check that' not in m.group(1) else text


@pytest.mark.parametrize('entry', INITIALISE + EVALUATE, ids=lambda f: f.__name__)
def test_a_baseline_checkpoint(entry, ckpts, capsys, tmp_path):
    verdict, line = entry(capsys, tmp_path, ckpts['base'])
    if entry in INITIALISE:
        assert (verdict, line) == ('accepted', '')
    else:
        assert verdict == 'refused'
        assert _problem(line) == BASE_IN_PSA


@pytest.mark.parametrize('entry', INITIALISE + EVALUATE, ids=lambda f: f.__name__)
def test_another_architecture(entry, ckpts, capsys, tmp_path):
    """A baseline of other widths: initialising may leave the PSA keys missing, evaluating
    may not; the shapes are wrong for all."""
    verdict, line = entry(capsys, tmp_path, ckpts['other'])
    assert verdict == 'refused'
    assert _problem(line) == NARROW_IN_PSA.get(entry.__name__, NARROW_IN_PSA['evaluate'])


@pytest.mark.parametrize('entry', INITIALISE + EVALUATE, ids=lambda f: f.__name__)
def test_a_truncated_file(entry, ckpts, capsys, tmp_path):
    verdict, line = entry(capsys, tmp_path, ckpts['truncated'])
    assert verdict == 'refused'
    assert TRUNCATED.search(line) and line.split(': ', 2)[-2].endswith(ckpts['truncated']), line


@pytest.mark.parametrize('entry', INITIALISE + EVALUATE, ids=lambda f: f.__name__)
def test_a_release_whose_sha256_does_not_match(entry, ckpts, capsys, tmp_path):
    verdict, line = entry(capsys, tmp_path, ckpts['release'])
    assert verdict == 'refused'
    assert RELEASE.search(line) and ckpts['release'] in line, line


@pytest.mark.parametrize('entry', [init_cfg, train_check, run_test_py], ids=lambda f: f.__name__)
def test_its_own_checkpoint_fits(entry, ckpts, capsys, tmp_path):
    assert entry(capsys, tmp_path, ckpts['psa']) == ('accepted', '')


def test_a_psa_checkpoint_on_the_baseline(ckpts, capsys, tmp_path):
    """The twin case through the entry points whose config is the baseline."""
    lines = [_tool(capsys, test_tool.main, [BASE, ckpts['psa'], '--check',
                                            '--work-dir', tmp_path / 'w']),
             _tool(capsys, train_tool.main, [BASE, '--check', '--work-dir', tmp_path / 'w',
                                             '--cfg-options', f'load_from={ckpts["psa"]}']),
             _tool(capsys, export_tool.main, [BASE, ckpts['psa'], '--out', tmp_path / 'm.onnx'])]
    assert [(v, _problem(line)) for v, line in lines] == [('refused', PSA_IN_BASE)] * 3
    assert not os.path.exists(tmp_path / 'm.onnx')
