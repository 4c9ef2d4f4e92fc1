"""train.py and test.py refuse a work dir another live run holds: after the pre-flight, before
anything is built or written, one line naming the holder's PID, exit 2, nothing in the work dir
written or changed."""
import os

import pytest
import torch

from psa_pose.config import build_model, load_config
from psa_pose.tools import test as test_tool
from psa_pose.tools import train as train_tool

from tests.conftest import REPO, in_process
from tests.engine.test_workdir import hold_in_another_process

CFG = os.path.join(REPO, 'tests', 'configs', 'td-hm_res18_1xb2-2e_minicoco-128x96.py')


def _snapshot(folder):
    return {p: open(os.path.join(folder, p), 'rb').read() for p in sorted(os.listdir(folder))}


@pytest.mark.parametrize('script,what', [('train.py', 'training'), ('test.py', 'testing')])
def test_second_run_in_a_held_work_dir_is_refused(tmp_path, tiny_coco, script, what, capsys):
    work = tmp_path / 'work'
    proc = hold_in_another_process(work)
    try:
        # the first run's checkpoint, one the pre-flight (before the lock) accepts
        torch.save({'state_dict': build_model(load_config(CFG)).state_dict(),
                    'meta': {'epoch': 1}}, work / 'epoch_1.pth')
        (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
        before = _snapshot(work)
        args = [work / 'epoch_1.pth'] if script == 'test.py' else []
        # in this process: the holder is another process, which is what the lock is about
        main = (test_tool if script == 'test.py' else train_tool).main
        res = in_process(capsys, main, CFG, *args, '--work-dir', work)
        assert res.returncode == 2
        assert res.stderr.strip().splitlines() == [
            f'error: {work}: another run (PID {proc.pid}) is using this work dir; {what} here '
            f'would mix its files with that run\'s; wait for it to end or pass another '
            f'--work-dir']
        assert _snapshot(work) == before
    finally:
        proc.kill()
        proc.wait()
