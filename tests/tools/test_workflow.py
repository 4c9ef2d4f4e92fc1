"""Every script end to end on CPU: train -> test -> eval -> compare -> publish -> load.

Tiny ResNet-18 twins (tests/configs) on 6 generated COCO-format images, 12 people
(tests/conftest.py: tiny_coco), GT boxes.
"""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from psa_pose import zoo
from psa_pose.config import config_files
from psa_pose.tools import compare_ap, get_flops
from psa_pose.evaluation.bootstrap import VERDICTS
from psa_pose.models.checkpoint import ChecksumError
from psa_pose.deploy.publish import load_published
from tests.conftest import REPO, SCRIPT_ENV, run_script, tiny_coco_dir

TINY_COCO = tiny_coco_dir()     # read while this module is collected

BASE = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18_1xb2-2e_minicoco-128x96.py')
PSA = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py')
ENV = SCRIPT_ENV
run = run_script


@pytest.fixture(scope='module')
def experiment(tmp_path_factory, tiny_coco):
    """compare_train.sh: both twins trained, tested and compared in one experiment folder."""
    cwd = tmp_path_factory.mktemp('elsewhere')
    exp = cwd / 'exp'
    env_out = subprocess.run(['bash', f'{REPO}/scripts/compare_train.sh', BASE, PSA, '1'],
                             cwd=cwd, env={**ENV, 'EXP_DIR': str(exp)}, capture_output=True,
                             text=True, timeout=1200)
    assert env_out.returncode == 0, env_out.stdout[-3000:] + env_out.stderr[-3000:]
    return exp, cwd, env_out.stdout


@pytest.mark.slow
def test_compare_train_writes_one_experiment_folder(experiment):
    exp, _, stdout = experiment
    for role, config in (('baseline', BASE), ('psa', PSA)):
        metrics = json.loads((exp / role / 'metrics.json').read_text())
        assert metrics['config'] == os.path.basename(config)[:-3]
        assert {'coco/AP', 'coco/AP .5', 'coco/AR'} <= set(metrics)
        assert (exp / role / 'epoch_2.pth').is_file()
        assert glob.glob(str(exp / role / '*' / 'vis_data' / 'scalars.json'))
    rows = json.loads((exp / 'compare.json').read_text())
    assert [r['psa'] for r in rows] == ['-', 'p (paper)']
    base, psa = rows
    assert psa['baseline'] == base['config']
    assert psa['delta_AP'] == psa['AP'] - base['AP']
    # the folders found their COCO results and ground truth: intervals on the 6 test images
    with open(os.path.join(TINY_COCO, 'test_coco.json')) as f:
        images = len(json.load(f)['images'])
    assert psa['bootstrap']['images'] == images == 6
    assert 0 <= base['AP_ci'][0] <= base['AP_ci'][1] <= 1
    low, high = psa['delta_AP_ci']
    assert low <= high and psa['verdict'] in VERDICTS
    # ResNet-18 (11,176,512) + HeatmapHead (4,200,209); + 2 paper PSA blocks (2c^2+3c each)
    # of widths 64, 128, 256 and 512
    assert base['params'] == 15_376_721
    assert psa['params'] - base['params'] == sum(2 * (2 * c * c + 3 * c)
                                                 for c in (64, 128, 256, 512))
    assert (exp / 'compare.png').stat().st_size > 10_000
    assert (exp / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    md = (exp / 'compare.md').read_text()
    assert md.startswith('| model | PSA | input |') and 'p (paper)' in md
    assert '| model | PSA | input |' in stdout


@pytest.mark.slow
def test_test_eval_publish_load(experiment, tiny_coco):
    exp, cwd, _ = experiment
    work = exp / 'psa'
    run(sys.executable, f'{REPO}/scripts/test.py', PSA, work / 'epoch_2.pth', '--work-dir',
        work / 't', '--out', work / 'm2.json', '--coco-results', work / 'results.json',
        '--dump', work / 'preds.pkl', cwd=cwd)
    metrics = json.loads((work / 'm2.json').read_text())
    assert (work / 'preds.pkl').stat().st_size > 0
    results = json.loads((work / 'results.json').read_text())
    assert results and {'image_id', 'keypoints', 'score'} <= set(results[0])
    # pycocotools on mmpose's own results file gives mmpose's numbers
    run(sys.executable, f'{REPO}/scripts/eval_coco.py', '--gt', f'{tiny_coco}/test_coco.json',
        '--results', work / 'results.json', '--out', work / 'eval.json', cwd=cwd)
    ours = json.loads((work / 'eval.json').read_text())
    assert ours['AP'] == pytest.approx(metrics['coco/AP'], abs=1e-9)
    assert ours['AR'] == pytest.approx(metrics['coco/AR'], abs=1e-9)

    out = run(sys.executable, f'{REPO}/scripts/publish_model.py', work / 'epoch_2.pth',
              exp / 'release' / 'tiny-psa', '--metrics', work / 'm2.json', cwd=cwd).stdout
    [published] = glob.glob(str(exp / 'release' / 'tiny-psa-*_*.pth'))
    assert f'published {published}' in out
    ckpt = load_published(published)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['config'] == os.path.basename(PSA)[:-3]
    assert ckpt['meta']['metrics']['AP'] == metrics['coco/AP']
    trained = torch.load(work / 'epoch_2.pth', map_location='cpu', weights_only=False)
    assert 'optimizer' in trained and 'optimizer' not in ckpt
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in trained['state_dict'].items())
    assert not glob.glob(str(exp / 'release' / '.*'))            # no temporary left

    # the published file evaluates like the training checkpoint
    run(sys.executable, f'{REPO}/scripts/test.py', PSA, published, '--work-dir', work / 't2',
        '--out', work / 'm3.json', cwd=cwd)
    assert json.loads((work / 'm3.json').read_text())['coco/AP'] == metrics['coco/AP']

    # a changed byte: refused by name check, before anything is evaluated
    tampered = exp / 'release' / os.path.basename(published)
    data = bytearray(open(published, 'rb').read())
    data[-10] ^= 0xFF
    bad = exp / 'bad'
    bad.mkdir()
    (bad / tampered.name).write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match='the name says'):
        load_published(str(bad / tampered.name))
    res = run(sys.executable, f'{REPO}/scripts/test.py', PSA, bad / tampered.name,
              '--out', bad / 'm.json', cwd=cwd, check=False)
    assert res.returncode == 2 and 'the file is corrupt or was changed' in res.stderr
    assert not (bad / 'm.json').exists()


@pytest.mark.slow
def test_resume_auto_continues(experiment):
    exp, cwd, _ = experiment
    run('bash', f'{REPO}/scripts/train.sh', PSA, '--work-dir', exp / 'psa', '--resume',
        '--cfg-options', 'train_cfg.max_epochs=3', cwd=cwd)
    assert (exp / 'psa' / 'epoch_3.pth').is_file()
    assert not (exp / 'psa' / 'epoch_4.pth').exists()


def test_get_flops_gives_the_model_zoos_numbers(capsys):
    name = 'td-hm_res50-psa-p_8xb64-210e_coco-256x192'
    zoo_entry = zoo.read_results()[name]
    assert get_flops.main([config_files()[name]]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f'config: {name}.py', 'input shape: 1x3x256x192',
        f'params: {zoo_entry["params"] / 1e6:.3f}M ({zoo_entry["params"]})',
        f'GFLOPs: {zoo_entry["gflops"]:.3f}']


@pytest.mark.parametrize('args,message', [
    (['nope/'], 'nope/: no such file or folder'),
    (['{tmp}/empty'], 'no metrics.json and no mmengine log with COCO metrics'),
    (['{tmp}/bad.json'], 'bad.json: not valid JSON'),
    (['{tmp}/noap.json'], 'noap.json: no COCO AP in it'),
])
def test_compare_ap_bad_inputs(tmp_path, args, message, capsys, monkeypatch):
    """In this process (the script is compare_ap.main; compare_train.sh runs it for real)."""
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'bad.json').write_text('{')
    (tmp_path / 'noap.json').write_text('{"config": "td-hm_res50_8xb64-210e_coco-256x192"}')
    args = [a.format(tmp=tmp_path) for a in args]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        compare_ap.main([*args, '--out-dir', str(tmp_path / 'out')])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'out').exists()


def test_shell_wrappers_explain_their_usage(tmp_path):
    for script, usage in (('train.sh', 'CONFIG'), ('dist_train.sh', 'CONFIG GPUS'),
                          ('dist_test.sh', 'CONFIG CHECKPOINT GPUS'),
                          ('slurm_train.sh', 'PARTITION JOB_NAME CONFIG WORK_DIR'),
                          ('slurm_test.sh', 'PARTITION JOB_NAME CONFIG CHECKPOINT'),
                          ('compare_train.sh', 'BASELINE_CONFIG PSA_CONFIG GPUS')):
        res = run('bash', f'{REPO}/scripts/{script}', cwd=tmp_path, check=False)
        assert res.returncode == 2 and f'usage: ' in res.stderr and usage in res.stderr, script


FAKE_PYTHON = r"""#!/usr/bin/env bash
# stands in for python: records the call, writes what train.py / test.py would
echo "$*" >> "$CALL_LOG"
script=$(basename -- "$1"); shift
work=; out=; res=
while [[ $# -gt 0 ]]; do
  case $1 in --work-dir) work=$2 ;; --out) out=$2 ;; --coco-results) res=$2 ;; esac; shift
done
case $script in
  train.py)
    mkdir -p "$work"; echo "$work/epoch_1.pth" > "$work/last_checkpoint"
    if [[ "$work" == *"$KILL_IN" && ! -f "$KILLED" ]]; then touch "$KILLED"; exit 137; fi ;;
  test.py) echo '{}' > "$out"; echo '[]' > "$res" ;;
esac
"""


SEED_RUNS = [('train.py', 'baseline/seed-0', 'randomness.seed=0', '--amp'),
             ('test.py', 'baseline/seed-0/test', 'randomness.seed=0'),
             ('train.py', 'psa/seed-0', 'randomness.seed=0', '--amp'),
             ('test.py', 'psa/seed-0/test', 'randomness.seed=0'),
             ('train.py', 'baseline/seed-1', 'randomness.seed=1', '--amp'),
             ('test.py', 'baseline/seed-1/test', 'randomness.seed=1'),
             ('train.py', 'psa/seed-1', 'randomness.seed=1', '--amp'),
             ('test.py', 'psa/seed-1/test', 'randomness.seed=1')]


@pytest.mark.parametrize('killed', [4, 6])
def test_compare_train_seeds_resume_after_a_kill(tmp_path, killed):
    """--seeds 2 killed after its first seed (in the second seed's baseline training) or later
    (in its PSA training): the same command again skips the finished runs, resumes the killed
    one from its checkpoint and trains the rest."""
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    exp, log = tmp_path / 'exp', tmp_path / 'calls'
    env = {**ENV, 'PYTHON': str(fake), 'CALL_LOG': str(log), 'EXP_DIR': str(exp),
           'KILL_IN': SEED_RUNS[killed][1], 'KILLED': str(tmp_path / 'killed')}
    cmd = ['bash', f'{REPO}/scripts/compare_train.sh', BASE, PSA, '1', '--seeds', '2', '--amp']

    def calls():
        out = []
        for line in log.read_text().splitlines():
            words = line.split()
            if words[0] == '-c':            # compare_train.sh's check of the config names
                continue
            script = os.path.basename(words[0])
            if script == 'compare_ap.py':
                out.append((script, *[os.path.relpath(w, exp) for w in words[1:3]]))
                continue
            work = words[words.index('--work-dir') + 1]
            out.append((script, os.path.relpath(work, exp), *(
                w for w in words if w.startswith('randomness') or w in ('--resume', '--amp'))))
        log.unlink()
        return out

    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert first.returncode == 137
    assert calls() == SEED_RUNS[:killed + 1]
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    resumed = (*SEED_RUNS[killed][:3], '--resume', '--amp')
    assert calls() == [resumed, *SEED_RUNS[killed + 1:], ('compare_ap.py', 'baseline', 'psa')]
    assert again.stdout.count('finished before') == killed // 2
    bad = subprocess.run(cmd[:5] + ['--seeds', 'x'], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith(
        'error: --seeds x: needs a count N (seeds 0..N-1) or a list like 0,1,2')


@pytest.mark.parametrize('script,args,expected', [
    ('dist_train.sh', ['CFG.py', '8', '--amp'],
     '-m psa_pose.engine.torchrun --nnodes=2 --node_rank=1 --master_addr=10.1.2.3 '
     '--master_port=29555 --nproc_per_node=8 {REPO}/scripts/train.py CFG.py --launcher pytorch '
     '--amp'),
    ('dist_test.sh', ['CFG.py', 'x.pth', '4', '--out', 'm.json'],
     '-m psa_pose.engine.torchrun --nnodes=2 --node_rank=1 --master_addr=10.1.2.3 '
     '--master_port=29555 --nproc_per_node=4 {REPO}/scripts/test.py CFG.py x.pth --launcher '
     'pytorch --out m.json'),
])
def test_dist_wrappers_assemble_torchrun(tmp_path, script, args, expected):
    """A stand-in interpreter records the torchrun call (psa_pose.engine.torchrun takes
    torchrun's arguments; mmengine's pytorch launcher needs
    CUDA, so a real multi-process run is for a GPU machine)."""
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho "$@" > "$CALL_LOG"\n')
    fake.chmod(0o755)
    env = {**ENV, 'PYTHON': str(fake), 'CALL_LOG': str(tmp_path / 'log'), 'NNODES': '2',
           'NODE_RANK': '1', 'MASTER_ADDR': '10.1.2.3', 'PORT': '29555'}
    out = subprocess.run(['bash', f'{REPO}/scripts/{script}', *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / 'log').read_text().strip() == expected.format(REPO=REPO)


@pytest.mark.parametrize('script,args,expected', [
    ('slurm_train.sh', ['gpu', 'psa-w32', 'CFG.py', 'work_dirs/x', '--amp'],
     ['-p gpu', '--job-name=psa-w32', '--gres=gpu:4', '--ntasks=16', '--ntasks-per-node=4',
      '--cpus-per-task=5', '--exclusive', 'scripts/train.py CFG.py --work-dir=work_dirs/x '
      '--launcher slurm --amp']),
    ('slurm_test.sh', ['gpu', 'psa-test', 'CFG.py', 'x.pth', '--out', 'm.json'],
     ['-p gpu', '--job-name=psa-test', '--ntasks=16', 'scripts/test.py CFG.py x.pth '
      '--launcher slurm --out m.json']),
])
def test_slurm_wrappers_assemble_srun(tmp_path, script, args, expected):
    """A stand-in srun on PATH records what the wrapper asks slurm for."""
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'srun').write_text('#!/bin/sh\necho "$@" > "$SRUN_LOG"\n')
    (fake / 'srun').chmod(0o755)
    (fake / 'python').write_text('#!/bin/sh\nexit 0\n')    # slurm_train.sh's --check passes
    (fake / 'python').chmod(0o755)
    env = {**ENV, 'PATH': f'{fake}:{os.environ["PATH"]}', 'SRUN_LOG': str(tmp_path / 'log'),
           'GPUS': '16', 'GPUS_PER_NODE': '4', 'SRUN_ARGS': '--exclusive',
           'PYTHON': str(fake / 'python')}
    out = subprocess.run(['bash', f'{REPO}/scripts/{script}', *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    call = (tmp_path / 'log').read_text()
    for part in expected:
        assert part in call, (part, call)


def test_slurm_train_requeue_resumes_by_itself(tmp_path):
    """A requeued job runs the same command again: with --requeue it resumes from the work
    dir's last checkpoint when there is one (the first run starts afresh)."""
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'srun').write_text('#!/bin/sh\necho "$@" > "$SRUN_LOG"\n')
    (fake / 'python').write_text('#!/bin/sh\nexit 0\n')
    for f in ('srun', 'python'):
        (fake / f).chmod(0o755)
    env = {**ENV, 'PATH': f'{fake}:{os.environ["PATH"]}', 'SRUN_LOG': str(tmp_path / 'log'),
           'PYTHON': str(fake / 'python')}
    work = tmp_path / 'work'
    cmd = ['bash', f'{REPO}/scripts/slurm_train.sh', 'cpu', 'j', 'CFG.py', str(work),
           '--requeue', '--amp']
    for resumed in (False, True):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        call = (tmp_path / 'log').read_text().strip()
        assert call.endswith(f'train.py CFG.py --work-dir={work} --launcher slurm --amp'
                             + (' --resume' if resumed else ''))
        assert '--requeue' not in call
        work.mkdir(exist_ok=True)
        (work / 'last_checkpoint').write_text(str(work / 'iter_9.pth'))
