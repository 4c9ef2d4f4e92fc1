"""Training that is killed, resumed, or diverges (psa_pose.engine's hooks, via train.py).

A narrow tiny ResNet-18 (tests/configs/td-hm_res18-w16_1xb2-3e_minicoco-128x96.py: 3 epochs of
6 iterations, random flip on) on the 12 people of 6 generated images; faults come from the test-only
tests/tools/faults.py, chosen by PSA_FAULT_* variables.
"""
import glob
import json
import os
import signal
import sys

import pytest
import torch

from tests.conftest import REPO, run_script

CFG = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18-w16_1xb2-3e_minicoco-128x96.py')
ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
KILLED = -signal.SIGKILL


def train(work, *args, faults=None, check=True):
    """scripts/train.py on the tiny config, from an unrelated directory."""
    cmd = [sys.executable, f'{REPO}/scripts/train.py', CFG, '--work-dir', work, *args]
    return run_script(*cmd, cwd=os.path.dirname(work), env={**ENV, **(faults or {})},
                      check=check, timeout=900)


def state_dict(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def assert_same_weights(a, b):
    a, b = state_dict(a), state_dict(b)
    assert list(a) == list(b)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}'


def final_ap(work):
    """The COCO AP of the last validation of the last (possibly resumed) run in ``work``."""
    runs = sorted(glob.glob(f'{work}/*/vis_data/scalars.json'))
    records = [json.loads(line) for line in open(runs[-1])]
    return [r for r in records if 'coco/AP' in r][-1]['coco/AP']


def last_checkpoint(work):
    return (work / 'last_checkpoint').read_text()


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, tiny_coco):
    work = tmp_path_factory.mktemp('uninterrupted') / 'work'
    train(work)
    return work


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(uninterrupted, tmp_path):
    """SIGKILL in epoch 2, resume from the checkpoint by name; SIGKILL in epoch 3, resume from
    the work dir: the same weights, bit for bit, and the same AP as one uninterrupted run."""
    work = tmp_path / 'work'
    res = train(work, faults={'PSA_FAULT_KILL_AFTER': '2:3'}, check=False)
    assert res.returncode == KILLED
    assert (work / 'epoch_1.pth').is_file() and not (work / 'epoch_2.pth').exists()

    res = train(work, '--resume', work / 'epoch_1.pth', faults={'PSA_FAULT_KILL_AFTER': '3:4'},
                check=False)
    assert res.returncode == KILLED
    assert (work / 'epoch_2.pth').is_file() and not (work / 'epoch_3.pth').exists()
    assert_same_weights(work / 'epoch_2.pth', uninterrupted / 'epoch_2.pth')

    train(work, '--resume')
    assert last_checkpoint(work) == str(work / 'epoch_3.pth')
    assert_same_weights(work / 'epoch_3.pth', uninterrupted / 'epoch_3.pth')
    assert final_ap(work) == final_ap(uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize('target,options', [
    # mmengine deletes the older checkpoints (max_keep_ckpts) before it saves the new one
    ('epoch_2.pth', ['default_hooks.checkpoint.max_keep_ckpts=1']),
    ('last_checkpoint', []),
])
def test_kill_while_saving_keeps_the_previous_checkpoint(uninterrupted, tmp_path, target,
                                                          options):
    """Killed halfway through writing epoch 2's checkpoint or ``last_checkpoint``: epoch 1's
    checkpoint and a ``last_checkpoint`` naming it are intact, no half-written file is under
    a checkpoint's name, and ``--resume auto`` redoes epoch 2 as the uninterrupted run did."""
    work = tmp_path / 'work'
    res = train(work, '--cfg-options', 'train_cfg.max_epochs=2', *options,
                faults={'PSA_FAULT_KILL_IN_WRITE': f'2:{target}'}, check=False)
    assert res.returncode == KILLED
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    assert_same_weights(work / 'epoch_1.pth', uninterrupted / 'epoch_1.pth')
    if target == 'epoch_2.pth':
        assert not (work / 'epoch_2.pth').exists()
    else:                          # the checkpoint was complete; only its name was not yet
        assert_same_weights(work / 'epoch_2.pth', uninterrupted / 'epoch_2.pth')
    assert glob.glob(str(work / '.*.tmp*'))              # the kill left its temporary ...

    train(work, '--no-validate', '--resume', 'auto', '--cfg-options', 'train_cfg.max_epochs=2',
          *options)
    assert last_checkpoint(work) == str(work / 'epoch_2.pth')
    assert_same_weights(work / 'epoch_2.pth', uninterrupted / 'epoch_2.pth')
    assert not glob.glob(str(work / '.*'))               # ... which the resumed run removed
    if options:
        assert sorted(p.name for p in work.glob('epoch_*.pth')) == ['epoch_2.pth']


@pytest.mark.slow
def test_nan_loss_stops_training_with_one_line(tmp_path):
    """The loss of iteration 9 (epoch 2, batch 3) is NaN: exit 2 and one line naming it and
    the last good checkpoint; nothing is saved after it."""
    work = tmp_path / 'work'
    res = train(work, '--cfg-options', 'train_cfg.max_epochs=2',
                faults={'PSA_FAULT_NAN_BEFORE': '2:3'}, check=False)
    assert res.returncode == 2
    good = work / 'epoch_1.pth'
    assert res.stderr.splitlines() == [
        f'error: loss is nan at iteration 9 (epoch 2, batch 3/6) [loss_kpt=nan]: training '
        f'stopped; last good checkpoint: {good} (continue with --resume {good}); lower the '
        'learning rate (optim_wrapper.optimizer.lr), clip gradients '
        '(optim_wrapper.clip_grad=dict(max_norm=...)) or check the annotations']
    [logged] = [line for line in res.stdout.splitlines() if 'Epoch(train) [2][3/6]' in line]
    assert 'loss: nan' in logged                     # the log has the iteration, then it stops
    assert 'Epoch(train) [2][4/6]' not in res.stdout
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']
    assert last_checkpoint(work) == str(good)


@pytest.mark.slow
def test_non_finite_weights_are_never_saved(tmp_path):
    """The weights become NaN after the last iteration of epoch 1, whose loss was finite:
    the epoch's checkpoint is refused, and there was none before it."""
    work = tmp_path / 'work'
    res = train(work, '--cfg-options', 'train_cfg.max_epochs=1',
                faults={'PSA_FAULT_NAN_AFTER': '1:6'}, check=False)
    assert res.returncode == 2
    [line] = res.stderr.splitlines()
    assert line.startswith('error: weights are not finite after iteration 6 (')
    assert 'e.g. backbone.conv1.weight); checkpoint not saved: training stopped; no ' \
        'checkpoint was saved before it; lower the learning rate' in line
    assert not list(work.glob('*.pth')) and not (work / 'last_checkpoint').exists()


def test_train_adds_the_safety_hooks_once():
    from mmengine.config import Config

    from psa_pose.engine import add_safety_hooks
    from psa_pose.config import load_config
    cfg = add_safety_hooks(load_config(CFG, None))
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.checkpoint.interval == 1              # its settings kept
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['SyncBuffersHook', 'FaultInjectionHook', 'FaultBeforeBestHook',
                     'EpochSeedHook', 'CheckFiniteLossHook', 'ValidateOnResumeHook',
                     'PreemptionHook']
    assert [h['type'] for h in add_safety_hooks(cfg).custom_hooks] == types
    # a config's own checkpoint hook is left alone
    own = Config(dict(default_hooks=dict(checkpoint=dict(type='MyCheckpointHook'))))
    assert add_safety_hooks(own).default_hooks.checkpoint.type == 'MyCheckpointHook'


def test_epoch_seed_hook_makes_the_rng_state_a_function_of_seed_and_epoch():
    """In process: whatever was drawn before, each epoch starts from the same state; epochs
    differ; the sampler shuffles with the run's seed (with randomness.seed=None mmengine
    builds it with a new one before restoring the checkpoint's)."""
    import random
    from types import SimpleNamespace

    import numpy as np
    from mmengine.dataset import DefaultSampler

    from psa_pose.engine import EpochSeedHook

    sampler = DefaultSampler(list(range(10)), shuffle=True, seed=123)
    runner = SimpleNamespace(seed=7, epoch=2, _randomness_cfg={},
                             train_dataloader=SimpleNamespace(sampler=sampler))

    def epoch_draws():
        EpochSeedHook().before_train_epoch(runner)
        return np.random.rand(), random.random(), torch.rand(1).item()

    first = epoch_draws()
    np.random.rand(3), random.random(), torch.rand(2)                # a run's other draws
    assert epoch_draws() == first
    assert sampler.seed == 7
    runner.epoch = 3
    assert all(a != b for a, b in zip(epoch_draws(), first))


EVERY_EPOCH = ['--cfg-options', 'train_cfg.val_interval=1']


@pytest.fixture(scope='module')
def validated_every_epoch(tmp_path_factory, tiny_coco):
    work = tmp_path_factory.mktemp('validated') / 'work'
    train(work, *EVERY_EPOCH)
    return work


def best_checkpoints(work):
    return sorted(p.name for p in work.glob('best_*.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('fault', [
    {'PSA_FAULT_KILL_BEFORE_VAL': '1'},        # epoch_1.pth saved, its validation not begun
    {'PSA_FAULT_KILL_BEFORE_BEST': '1'},       # metrics computed, best_* not yet written
    {'PSA_FAULT_KILL_AFTER_VAL': '1'},         # best_* written, the validation not recorded
    {'PSA_FAULT_KILL_AFTER': '2:3'},           # validated and recorded; killed in epoch 2
])
def test_resumed_run_selects_the_uninterrupted_best_checkpoint(validated_every_epoch, tmp_path,
                                                               fault):
    """Killed at each point between epoch 1's checkpoint and the record of its validation
    (and after it): ``--resume`` ends with the same best checkpoint, by name and weights, as
    the uninterrupted run -- the one compare_train.sh then tests."""
    [best] = best_checkpoints(validated_every_epoch)
    assert best == 'best_coco_AP_epoch_1.pth'     # AP ties later: the first best is kept
    work = tmp_path / 'work'
    res = train(work, *EVERY_EPOCH, faults=fault, check=False)
    assert res.returncode == KILLED
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    out = train(work, '--resume', *EVERY_EPOCH)
    validated_again = 'the validation of epoch 1 did not complete' in out.stdout
    assert validated_again == ('PSA_FAULT_KILL_AFTER' not in fault)
    assert best_checkpoints(work) == [best]
    assert_same_weights(work / best, validated_every_epoch / best)
    assert json.loads((work / 'last_validation.json').read_text()) == \
        {**json.loads((validated_every_epoch / 'last_validation.json').read_text()),
         'best_ckpt': str(work / best)}
    assert final_ap(work) == final_ap(validated_every_epoch)


@pytest.mark.slow
def test_full_disk_while_saving_is_one_line_and_loses_nothing(uninterrupted, tmp_path):
    """The disk fills up halfway through writing epoch 2's checkpoint: one line naming it,
    exit 2; epoch 1's checkpoint and ``last_checkpoint`` intact, no temporary left."""
    work = tmp_path / 'work'
    res = train(work, '--cfg-options', 'train_cfg.max_epochs=2',
                faults={'PSA_FAULT_ENOSPC_IN_WRITE': '2:epoch_2.pth'}, check=False)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f'error: no space left writing {work}/epoch_2.pth; nothing was changed (free some '
        f'space on {work}\'s file system and run the command again)']
    assert last_checkpoint(work) == str(work / 'epoch_1.pth')
    assert_same_weights(work / 'epoch_1.pth', uninterrupted / 'epoch_1.pth')
    assert not (work / 'epoch_2.pth').exists() and not glob.glob(str(work / '.*'))


@pytest.mark.slow
def test_sigterm_saves_the_iteration_and_the_resumed_run_equals_uninterrupted(uninterrupted,
                                                                               tmp_path):
    """SIGTERM (Slurm's preemption notice) after batch 3 of epoch 2: iteration 9 is saved
    atomically, one line says how to resume, exit 2; the resumed run draws the epoch's first 3
    batches again without training on them and ends with the uninterrupted run's weights."""
    work = tmp_path / 'work'
    res = train(work, faults={'PSA_FAULT_SIGTERM_AFTER': '2:3'}, check=False)
    assert res.returncode == 2
    saved = work / 'iter_9.pth'
    [line] = res.stderr.splitlines()
    assert line.startswith(f'error: SIGTERM: training stopped at iteration 9 (epoch 2, batch '
                           f'3/6); saved {saved}; resume with: ')
    assert line.endswith(f'train.py {CFG} --work-dir {work} --resume')
    assert last_checkpoint(work) == str(saved)
    from psa_pose.models.checkpoint import load_weights_only
    assert load_weights_only(str(saved))['meta']['iter'] == 9
    assert not glob.glob(str(work / '.*'))
    out = train(work, '--resume')
    assert 'resuming epoch 2 after its batch 3' in out.stdout
    assert_same_weights(work / 'epoch_3.pth', uninterrupted / 'epoch_3.pth')
    assert final_ap(work) == final_ap(uninterrupted)
