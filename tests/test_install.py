"""scripts/install.sh: the checks it makes before it touches anything."""
import os
import shutil

from .conftest import REPO, SCRIPT_ENV, run_script


def test_install_refuses_a_full_disk_in_one_line_before_creating_the_venv(tmp_path):
    # A copy of the files install.sh reads, so the real .venv is never touched.
    (tmp_path / 'scripts').mkdir()
    shutil.copy(os.path.join(REPO, 'scripts', 'install.sh'), tmp_path / 'scripts')
    for name in ('requirements.txt', 'requirements-nodeps.txt', 'requirements-export.txt',
                 'requirements-source.txt', 'pyproject.toml'):
        shutil.copy(os.path.join(REPO, name), tmp_path)
    # More than any disk here has free: the check must stop the install.
    env = {**SCRIPT_ENV, 'PSA_POSE_INSTALL_NEED_GB': '1000000'}

    out = run_script('bash', tmp_path / 'scripts' / 'install.sh', cwd=tmp_path, env=env,
                     check=False, timeout=60)

    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith('[install] error: only ')
    assert f'GB free on the disk holding {tmp_path};' in lines[0]
    assert 'the venv needs about 1000000 GB: free space' in lines[0]
    assert not (tmp_path / '.venv').exists()
