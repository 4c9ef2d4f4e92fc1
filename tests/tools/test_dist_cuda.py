"""scripts/dist_train.sh on one GPU for a few iterations (``-m cuda``)."""
import glob
import os

import pytest
import torch

from tests.conftest import REPO, SCRIPT_ENV, run_script

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason='needs a CUDA GPU (torch.cuda.is_available() is False)')]


def test_dist_train_on_one_gpu(tmp_path, tiny_coco):
    work = tmp_path / 'work'
    run_script('bash', os.path.join(REPO, 'scripts', 'dist_train.sh'),
               os.path.join(REPO, 'tests', 'configs',
                            'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py'), 1,
               '--work-dir', work, '--amp', cwd=tmp_path,
               env={**SCRIPT_ENV, 'PORT': '29631'}, timeout=600)
    assert sorted(os.path.basename(p) for p in glob.glob(str(work / 'epoch_*.pth'))) == \
        ['epoch_1.pth', 'epoch_2.pth']
