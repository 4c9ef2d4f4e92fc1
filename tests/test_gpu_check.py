"""scripts/gpu_check.sh where there is no GPU: one line, exit 2, no report."""
import os

import pytest
import torch

from tests.conftest import REPO, run_script


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU: '
                    'scripts/gpu_check.sh runs for real there')
def test_gpu_check_refuses_without_a_gpu(tmp_path):
    out = run_script('bash', os.path.join(REPO, 'scripts', 'gpu_check.sh'), tmp_path / 'report',
                     cwd=tmp_path, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        'error: torch sees no CUDA GPU here (torch.cuda.is_available() is False); run this on '
        'a GPU machine']
    assert not (tmp_path / 'report').exists()
