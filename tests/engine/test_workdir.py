"""One run per work dir (an flock the kernel releases), and a clean-up that spares live runs."""
import os
import subprocess
import sys

import pytest

from psa_pose.engine.workdir import (hold_work_dir, lock_holder, release_work_dir,
                                     remove_stale_temporaries)
from psa_pose.utils import UserError

# what hold_work_dir does, without importing the package (seconds less per test)
HOLD = ('import fcntl, os, sys, time; os.makedirs(sys.argv[1]); '
        'fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); '
        'fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print("held", flush=True); '
        'time.sleep(600)')


def hold_in_another_process(work):
    """A process that holds ``work``'s lock until it is killed."""
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(work)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


@pytest.fixture
def holder(tmp_path):
    work = tmp_path / 'work'
    proc = hold_in_another_process(work)
    yield work, proc
    proc.kill()
    proc.wait()


def test_a_second_run_is_refused_naming_the_holder(holder):
    work, proc = holder
    assert lock_holder(str(work)) == proc.pid
    with pytest.raises(UserError) as err:
        hold_work_dir(str(work), 'testing')
    assert str(err.value) == (f'{work}: another run (PID {proc.pid}) is using this work dir; '
                              f'testing here would mix its files with that run\'s; wait for it '
                              f'to end or pass another --work-dir')
    assert os.listdir(work) == []                    # no lock file: the folder itself is locked
    proc.kill()                                      # the kernel releases the lock of the dead
    proc.wait()
    hold_work_dir(str(work), 'training')
    try:
        assert lock_holder(str(work)) == os.getpid()
    finally:
        release_work_dir(str(work))
    assert lock_holder(str(work)) is None


def test_other_ranks_do_not_lock(holder, monkeypatch):
    work, _ = holder
    monkeypatch.setenv('RANK', '1')
    hold_work_dir(str(work), 'training')             # rank 0 holds it for the run


def test_clean_up_removes_only_what_dead_processes_left(holder):
    work, proc = holder
    done = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    dead = int(done.stdout)
    live_staging = work / f'.last_checkpoint.staging.tmp{proc.pid}'
    live_staging.mkdir()
    (live_staging / 'last_checkpoint').write_text('x')
    dead_staging = work / f'.last_checkpoint.staging.tmp{dead}'
    dead_staging.mkdir()
    dead_file = work / f'.epoch_1.pth.tmp{dead}'
    dead_file.write_bytes(b'half')
    (work / 'epoch_1.pth').write_bytes(b'whole')
    lines = []
    removed = remove_stale_temporaries(str(work), lines.append)
    assert removed == [str(dead_file), str(dead_staging)]
    assert lines == [f'removing {p}, left by an interrupted save' for p in removed]
    assert sorted(os.listdir(work)) == [live_staging.name, 'epoch_1.pth']
