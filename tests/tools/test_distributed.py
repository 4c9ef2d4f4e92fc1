"""Distributed runs for real on this CPU-only machine: torchrun (scripts/dist_train.sh,
dist_test.sh) and a single-node Slurm (scripts/slurm_train.sh, slurm_test.sh), 2 processes on
the gloo backend, against one process. The tiny PSA ResNet-18 of tests/configs on 6 generated
images (12 people, tests/conftest.py: tiny_coco): 2 epochs of 3 iterations per rank."""
import glob
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from psa_pose.engine import last_checkpoint
from tests.conftest import REPO, run_script

PSA_CFG = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py')
ENV = {**os.environ, 'PYTHON': sys.executable, 'PYTHONWARNINGS': 'ignore', 'OMP_NUM_THREADS': '1'}
for _var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID',
             'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_JOB_ID'):
    ENV.pop(_var, None)
GLOO_LINE = ('distributed: no GPU on this node, so 2 CPU processes with the gloo backend '
             "(instead of the config's nccl)")


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def probe_config(folder) -> str:
    """The tiny PSA config plus the test-only hooks: every rank's final state dict
    (tests/tools/dist_probe.py) and the kill switch (tests/tools/faults.py)."""
    path = os.path.join(folder, 'td-hm_res18-psa-p_2xb2-2e_minicoco-128x96.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = '{PSA_CFG}'\n"
                "custom_imports = dict(imports=['psa_pose', 'tests.tools.faults', "
                "'tests.tools.dist_probe'], allow_failed_imports=False)\n"
                "custom_hooks = [dict(type='SyncBuffersHook'), dict(type='FaultInjectionHook'), "
                "dict(type='DumpStateHook')]\n")
    return path


def dist_train(cfg, work, *args, env=None, check=True):
    return run_script('bash', f'{REPO}/scripts/dist_train.sh', cfg, 2, '--work-dir', work, *args,
                      cwd=os.path.dirname(work), check=check, timeout=600,
                      env={**ENV, 'PORT': free_port(), **(env or {})})


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def assert_identical(a, b):
    assert list(a) == list(b)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}'


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_coco):
    """One uninterrupted 2-process torchrun training: (work dir, per-rank dumps, result)."""
    root = tmp_path_factory.mktemp('ddp')
    cfg = probe_config(root)
    res = dist_train(cfg, root / 'work', env={'PSA_DUMP_STATE': str(root / 'dump')})
    return cfg, root / 'work', root / 'dump', res


@pytest.mark.slow
def test_dist_train_ranks_end_identical_and_rank0_writes_one_set(trained):
    cfg, work, dump, res = trained
    rank0, rank1 = torch.load(dump / 'rank0.pth'), torch.load(dump / 'rank1.pth')
    assert_identical(rank0, rank1)                   # parameters and buffers, bit for bit
    psa = [k for k in rank0 if '.psa.' in k]
    assert len(psa) == 56                            # 8 blocks x 7 PSA tensors
    buffers = [k for k in rank0 if k.endswith(('running_mean', 'running_var'))]
    assert buffers and any(not torch.equal(rank0[k], weights(work / 'epoch_1.pth')[k])
                           for k in psa)             # trained, not just initialised
    assert_identical(weights(work / 'epoch_2.pth'), rank0)
    # one set of checkpoints (rank 0), one log folder, and the backend said once
    pths = sorted(os.path.relpath(p, work) for p in glob.glob(f'{work}/**/*.pth', recursive=True))
    assert [p for p in pths if not p.startswith('best_')] == ['epoch_1.pth', 'epoch_2.pth']
    assert len([p for p in pths if p.startswith('best_')]) == 1
    assert len(glob.glob(f'{work}/*/*.log')) == 1
    assert (res.stdout + res.stderr).count(GLOO_LINE) == 1


@pytest.mark.slow
def test_ddp_gradients_equal_one_process_on_the_whole_batch(tmp_path):
    """One step of the PSA model in MMDistributedDataParallel (2 ranks x 2 images) against the
    same model on the 4 images in one process, batch norm in eval mode."""
    run_script(sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
               '--master_addr=127.0.0.1', f'--master_port={free_port()}',
               f'{REPO}/tests/tools/dist_probe.py', PSA_CFG, tmp_path, cwd=tmp_path,
               env={**ENV, 'PYTHONPATH': REPO}, timeout=300)
    g0, g1 = torch.load(tmp_path / 'grads0.pth'), torch.load(tmp_path / 'grads1.pth')
    assert g0['world_size'] == 2
    assert_identical(g0['ddp'], g1['ddp'])           # all-reduced: the same on both ranks
    assert [k for k, v in g0['ddp'].items() if v is None] == []
    psa = [k for k in g0['ddp'] if '.psa.' in k]
    assert len(psa) == 56 and all(g0['ddp'][k].abs().max() > 0 for k in psa)
    for name, single in g0['single'].items():
        error = ((g0['ddp'][name] - single).norm() / single.norm()).item()
        assert error < 1e-5, (name, error)           # float rounding (measured: 1.8e-6)


@pytest.mark.slow
def test_resume_under_torchrun_after_a_kill_equals_uninterrupted(trained, tmp_path):
    cfg, work, _, _ = trained
    killed = tmp_path / 'work'
    res = dist_train(cfg, killed, env={'PSA_FAULT_KILL_AFTER': '2:1'}, check=False)
    assert res.returncode != 0
    assert (killed / 'epoch_1.pth').exists() and not (killed / 'epoch_2.pth').exists()
    dist_train(cfg, killed, '--resume')
    assert_identical(weights(killed / 'epoch_2.pth'), weights(work / 'epoch_2.pth'))


@pytest.mark.slow
def test_sigterm_to_the_whole_run_saves_the_iteration_once_and_resumes(trained, tmp_path):
    """SIGTERM to every process of a 2-process dist_train.sh run after batch 2 of epoch 2, as
    Slurm sends it to a job step (tests/tools/faults.py): rank 0 saves iteration 5 once, one
    line (not one per rank, no torchrun traceback) with the command that resumes, exit 2; that
    command ends with the uninterrupted run's weights."""
    cfg, work, _, _ = trained
    run = tmp_path / 'work'
    res = dist_train(cfg, run, env={'PSA_FAULT_SIGTERM_STEP_AFTER': '2:2'}, check=False)
    assert res.returncode == 2
    saved = run / 'iter_5.pth'
    assert res.stderr.splitlines() == [
        f'error: SIGTERM: training stopped at iteration 5 (epoch 2, batch 2/3); saved {saved}; '
        f'resume with: bash {REPO}/scripts/dist_train.sh {cfg} 2 --work-dir {run} --resume']
    assert last_checkpoint(run) == str(saved)
    assert sorted(p.name for p in run.glob('*.pth')) == \
        ['best_coco_AP_epoch_1.pth', 'epoch_1.pth', 'iter_5.pth']
    assert not glob.glob(str(run / '.*'))                # no temporary left
    resumed = dist_train(cfg, run, '--resume')
    assert 'resuming epoch 2 after its batch 2' in resumed.stdout
    assert_identical(weights(run / 'epoch_2.pth'), weights(work / 'epoch_2.pth'))


@pytest.mark.slow
def test_a_worker_lost_on_another_node_is_one_line_naming_the_node(trained, tmp_path):
    """Two torchrun nodes on this machine (NNODES=2, one process each, gloo): node 1's worker
    is killed after batch 1 of epoch 2. Node 0 says in one line which node was lost and how
    to continue, exit 2; node 1 says its worker was killed, exit 128 + 9. No traceback."""
    cfg = trained[0]
    work = tmp_path / 'work'
    env = {**ENV, 'NNODES': '2', 'MASTER_ADDR': '127.0.0.1', 'PORT': free_port()}
    cmd = ['bash', f'{REPO}/scripts/dist_train.sh', str(cfg), '1', '--work-dir', str(work)]
    with open(tmp_path / 'node1.out', 'w') as out, open(tmp_path / 'node1.err', 'w') as err:
        node1 = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=err, env={
            **env, 'NODE_RANK': '1', 'PSA_FAULT_KILL_AFTER': '2:1'})
        node0 = run_script(*cmd, cwd=tmp_path, check=False, timeout=600,
                           env={**env, 'NODE_RANK': '0'})
        assert node1.wait(timeout=120) == 137
    assert node0.returncode == 2
    [line] = node0.stderr.splitlines()
    cause = r'(Connection closed by peer|Read error|Connection reset by peer)[^()]*'
    assert re.fullmatch(
        rf'error: the worker on node rank 1 was lost \({cause}\); training stopped at '
        rf'iteration 4; the last checkpoint is {re.escape(str(work))}/epoch_1.pth; continue '
        rf'with --resume on every node', line), line
    assert (tmp_path / 'node1.err').read_text().splitlines() == [
        'error: worker rank 1 (local rank 0) on node rank 1 was killed by SIGKILL, so torchrun '
        'stopped the workers of this node (out of memory? see dmesg); run the same command '
        'again (with --resume to continue a training)']


def predictions(path):
    with open(path, 'rb') as f:
        return [(p['id'], p['pred_instances']['keypoints'], p['pred_instances']['keypoint_scores'])
                for p in pickle.load(f)]


def assert_same_evaluation(tmp_path, a, b, samples):
    import json
    ma, mb = json.load(open(tmp_path / f'{a}.json')), json.load(open(tmp_path / f'{b}.json'))
    assert ma == mb
    pa, pb = predictions(tmp_path / f'{a}.pkl'), predictions(tmp_path / f'{b}.pkl')
    assert len(pa) == len(pb) == samples             # each sample once, the padding dropped
    for (ia, ka, sa), (ib, kb, sb) in zip(pa, pb):
        assert ia == ib
        assert abs(ka - kb).max() < 1e-4 and abs(sa - sb).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize('samples', [12, 5])         # 5: the sampler pads rank 1
def test_dist_test_equals_one_process(trained, tmp_path, samples):
    cfg, work, _, _ = trained
    options = [] if samples == 12 else \
        ['--cfg-options', f'test_dataloader.dataset.indices={samples}']
    common = [cfg, work / 'epoch_2.pth']
    run_script(sys.executable, f'{REPO}/scripts/test.py', *common, '--work-dir', tmp_path / 'w1',
               '--out', tmp_path / 'one.json', '--dump', tmp_path / 'one.pkl', *options,
               cwd=tmp_path, env=ENV, timeout=600)
    res = run_script('bash', f'{REPO}/scripts/dist_test.sh', *common, 2, '--work-dir',
                     tmp_path / 'w2', '--out', tmp_path / 'two.json', '--dump',
                     tmp_path / 'two.pkl', *options, cwd=tmp_path,
                     env={**ENV, 'PORT': free_port()}, timeout=600)
    assert (res.stdout + res.stderr).count(GLOO_LINE) == 1
    assert_same_evaluation(tmp_path, 'one', 'two', samples)


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    """A single-node Slurm cluster (tests/slurm/start_slurm.sh; installs slurm-wlm and munge
    with apt-get when missing, which needs root), stopped afterwards."""
    if shutil.which('srun') is None and os.geteuid() != 0:
        pytest.skip('no srun, and installing slurm-wlm needs root: run as root or install it')
    folder = tmp_path_factory.mktemp('slurm')
    start = subprocess.run(['bash', f'{REPO}/tests/slurm/start_slurm.sh', folder],
                           capture_output=True, text=True, timeout=900)
    if start.returncode != 0:
        pytest.fail(f'start_slurm.sh failed:\n{start.stdout}\n{start.stderr}')
    yield {**ENV, 'SLURM_CONF': str(folder / 'slurm.conf'), 'GPUS': '2', 'GPUS_PER_NODE': '2',
           'CPUS_PER_TASK': '1', 'GRES': '', 'MASTER_PORT': free_port()}
    subprocess.run(['bash', f'{REPO}/tests/slurm/stop_slurm.sh', folder], timeout=60)


@pytest.mark.slow
def test_slurm_train_and_test_with_two_tasks_equal_torchrun(trained, slurm, tmp_path):
    cfg, work, _, _ = trained
    res = run_script('bash', f'{REPO}/scripts/slurm_train.sh', 'cpu', 'psa-train', cfg,
                     tmp_path / 'work', cwd=tmp_path, timeout=600,
                     env={**slurm, 'PSA_DUMP_STATE': str(tmp_path / 'dump')})
    assert (res.stdout + res.stderr).count(GLOO_LINE) == 1
    assert_identical(torch.load(tmp_path / 'dump' / 'rank0.pth'),
                     torch.load(tmp_path / 'dump' / 'rank1.pth'))
    assert_identical(weights(tmp_path / 'work' / 'epoch_2.pth'), weights(work / 'epoch_2.pth'))
    options = ['--cfg-options', 'test_dataloader.dataset.indices=5']
    common = [cfg, work / 'epoch_2.pth']
    run_script(sys.executable, f'{REPO}/scripts/test.py', *common, '--work-dir', tmp_path / 'w1',
               '--out', tmp_path / 'one.json', '--dump', tmp_path / 'one.pkl', *options,
               cwd=tmp_path, env=ENV, timeout=600)
    run_script('bash', f'{REPO}/scripts/slurm_test.sh', 'cpu', 'psa-test', *common, '--work-dir',
               tmp_path / 'w2', '--out', tmp_path / 'two.json', '--dump', tmp_path / 'two.pkl',
               *options, cwd=tmp_path, env=slurm, timeout=600)
    assert_same_evaluation(tmp_path, 'one', 'two', 5)


@pytest.mark.slow
def test_slurm_sigterm_to_every_task_saves_once_and_resumes(trained, slurm, tmp_path):
    """Slurm signals every task of the step: each of the 2 tasks gets SIGTERM after batch 2 of
    epoch 2 (tests/tools/faults.py). One line of ours (rank 0's) with slurm_train.sh's own
    resume command, exit 2; the rest of stderr is srun's and slurmstepd's own report of the
    ended step. Resuming ends with the uninterrupted run's weights."""
    cfg, work, _, _ = trained
    run = tmp_path / 'work'
    cmd = ['bash', f'{REPO}/scripts/slurm_train.sh', 'cpu', 'psa-train', cfg, run]
    res = run_script(*cmd, cwd=tmp_path, timeout=600, check=False,
                     env={**slurm, 'PSA_FAULT_SIGTERM_AFTER': '2:2'})
    assert res.returncode == 2
    ours = [line for line in res.stderr.splitlines()
            if not line.startswith(('srun: ', 'slurmstepd'))]
    assert ours == [
        f'error: SIGTERM: training stopped at iteration 5 (epoch 2, batch 2/3); saved '
        f'{run}/iter_5.pth; resume with: bash {REPO}/scripts/slurm_train.sh cpu psa-train '
        f'{cfg} {run} --resume']
    assert last_checkpoint(run) == str(run / 'iter_5.pth')
    run_script(*cmd, '--resume', cwd=tmp_path, timeout=600, env=slurm)
    assert_identical(weights(run / 'epoch_2.pth'), weights(work / 'epoch_2.pth'))


@pytest.mark.parametrize('script,args', [('train', []), ('test', ['x.pth'])])
def test_launcher_pytorch_outside_torchrun_is_one_line(tmp_path, script, args, capsys,
                                                        monkeypatch):
    """``scripts/{train,test}.py --launcher pytorch`` without torchrun's variables (in this
    process, with them removed from the environment)."""
    import importlib
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    main = importlib.import_module(f'psa_pose.tools.{script}').main
    with pytest.raises(SystemExit) as exit_:
        main([PSA_CFG, *args, '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'work')])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        'error: --launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set, so this '
        'process was not started by its launcher; start it with torchrun: bash '
        'scripts/dist_train.sh CONFIG GPUS (dist_test.sh), or use --launcher none for one '
        'process\n')
    assert not (tmp_path / 'work').exists()
