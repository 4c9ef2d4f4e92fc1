"""dist_train.sh / dist_test.sh check once before torchrun starts the workers: a busy PORT and a
mistake in the config or the data are one line, printed once, exit 2 (no per-rank repeats, no
torchrun traceback)."""
import socket

import pytest

from tests.conftest import REPO, run_script
from tests.tools.test_distributed import ENV, PSA_CFG, free_port


@pytest.mark.slow
@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_busy_port_is_one_line(tmp_path, script):
    with socket.socket() as busy:
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [PSA_CFG, *(['e.pth'] if script == 'dist_test.sh' else []), 2]
        res = run_script('bash', f'{REPO}/scripts/{script}', *args, '--work-dir',
                         tmp_path / 'work', cwd=tmp_path, check=False, timeout=300,
                         env={**ENV, 'PORT': str(port)})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f'error: PORT {port}: already in use on this machine (another distributed run?); set '
        f'PORT to a free port, e.g. PORT={port + 1} bash scripts/{script} ...']
    assert not (tmp_path / 'work').exists()


@pytest.mark.slow
def test_config_mistake_is_printed_once(tmp_path, tiny_coco):
    cfg = tmp_path / 'td-hm_res18-psa-p_2xb2-2e_minicoco-128x96.py'
    cfg.write_text(f"_base_ = '{PSA_CFG}'\n"
                   f"train_dataloader = dict(dataset=dict(ann_file='nope.json'))\n")
    res = run_script('bash', f'{REPO}/scripts/dist_train.sh', cfg, 2, '--work-dir',
                     tmp_path / 'work', cwd=tmp_path, check=False, timeout=300,
                     env={**ENV, 'PORT': free_port()})
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f'error: {tiny_coco}/nope.json: annotation file of '
                           f'train_dataloader.dataset does not exist')
    assert 'ChildFailedError' not in res.stdout + res.stderr


def test_resume_command_is_the_launch_scripts(monkeypatch):
    """dist_train.sh and slurm_train.sh pass their own command line ($PSA_POSE_COMMAND, one
    argument a line) to the workers; a preempted run prints it with --resume in place of any
    --resume CKPT it had."""
    from mmengine.config import Config

    from psa_pose.engine.preemption import resume_command, set_command
    monkeypatch.setenv('PSA_POSE_COMMAND', 'bash\nscripts/dist_train.sh\nC.py\n2\n--work-dir\n'
                       'w d\n--resume\nw d/epoch_1.pth')
    cfg = Config(dict(custom_hooks=[dict(type='PreemptionHook')]))
    set_command(cfg, ['scripts/train.py', 'C.py', '--launcher', 'pytorch'])
    assert resume_command(cfg.custom_hooks[0]['command']) == \
        "bash scripts/dist_train.sh C.py 2 --work-dir 'w d' --resume"


def test_a_worker_killed_by_a_signal_is_one_line():
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from psa_pose.engine.torchrun import failure_line
    killed = ProcessFailure(local_rank=0, pid=1, exitcode=-9, error_file='')
    assert failure_line(3, killed, 1) == (
        'worker rank 3 (local rank 0) on node rank 1 was killed by SIGKILL, so torchrun '
        'stopped the workers of this node (out of memory? see dmesg); run the same command '
        'again (with --resume to continue a training)')
