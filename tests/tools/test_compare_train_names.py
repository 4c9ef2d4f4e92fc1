"""compare_train.sh refuses config names compare_ap.py cannot pair before it trains anything."""
import os
import shutil
import subprocess

import pytest

from psa_pose.evaluation.compare import check_pair
from psa_pose.utils import UserError
from tests.conftest import REPO, SCRIPT_ENV

CONFIGS = os.path.join(REPO, 'tests', 'configs')
BASE = os.path.join(CONFIGS, 'td-hm_res18_1xb2-2e_minicoco-128x96.py')
PSA = os.path.join(CONFIGS, 'td-hm_res18-psa-p_1xb2-2e_minicoco-128x96.py')


def test_check_pair():
    check_pair(BASE, PSA)
    with pytest.raises(UserError, match=r'^/x/my_model\.py: the PSA config \'my_model\' does '
                       r'not follow .*; compare_ap.py pairs the runs by their config names: '
                       r'rename the file \(nothing was trained\)$'):
        check_pair(BASE, '/x/my_model.py')
    with pytest.raises(UserError) as err:
        check_pair(PSA, BASE)
    assert str(err.value).startswith(f'{PSA}: the baseline config has a PSA tag (-psa-p)')
    other = '/x/td-hm_res50-psa-p_1xb2-2e_minicoco-128x96.py'
    with pytest.raises(UserError) as err:
        check_pair(BASE, other)
    assert str(err.value) == (f'{other}: not a PSA variant of td-hm_res18_1xb2-2e_minicoco-'
                              f'128x96 (its baseline by name is td-hm_res50_1xb2-2e_minicoco-'
                              f'128x96); pass a baseline and its own PSA variant (nothing was '
                              f'trained)')


@pytest.mark.slow
def test_compare_train_refuses_names_before_training(tmp_path):
    bad = tmp_path / 'psa_try.py'
    shutil.copy(PSA, bad)
    exp = tmp_path / 'exp'
    res = subprocess.run(['bash', f'{REPO}/scripts/compare_train.sh', BASE, str(bad), '1'],
                         cwd=tmp_path, env={**SCRIPT_ENV, 'EXP_DIR': str(exp)},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: the PSA config 'psa_try' does not follow")
    assert res.stdout == '' and not exp.exists()
