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
