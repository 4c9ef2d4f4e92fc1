"""Checks the launch scripts run once, before torchrun or srun starts the workers.

Started as workers, a busy port ends in torchrun's ``EADDRINUSE`` traceback, and a mistake in
the config or the data prints its one line once per rank and then torchrun's
``ChildFailedError`` traceback. ``scripts/dist_train.sh`` and ``dist_test.sh`` call
:func:`main` (``python -m psa_pose.engine.launch_check port PORT SCRIPT``) and then the tool's
own pre-flight (``train.py/test.py ... --check``) in one process: one line, printed once, exit
code 2.
"""
import errno
import socket
import sys
from typing import List

from ..utils import UserError, one_line_errors


def check_port(port: int, script: str = 'scripts/dist_train.sh') -> None:
    """Refuse (one line) a rendezvous port another process listens on here: torchrun's master
    (node rank 0) binds it on every interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('', port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise UserError(f'PORT {port}: already in use on this machine (another '
                            f'distributed run?); set PORT to a free port, e.g. '
                            f'PORT={port + 1} bash {script} ...') from None


def main(argv: List[str]) -> int:
    """``port PORT [SCRIPT]``: :func:`check_port`."""
    with one_line_errors():
        if argv[:1] != ['port'] or not 2 <= len(argv) <= 3 or not argv[1].isdigit():
            raise UserError(f'launch_check: expected port PORT [SCRIPT], got {argv}')
        check_port(int(argv[1]), *argv[2:3])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
