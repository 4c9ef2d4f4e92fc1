"""A local file backend whose writes are atomic, for checkpoints that must survive a kill."""
import os
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from ..utils import atomic_path

ATOMIC_LOCAL = 'atomic_local'


def write_atomic(data: Union[bytes, str], path: Union[str, Path], encoding: str = 'utf-8') -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over
    ``path``: readers (and a later ``--resume``) see the old file or the complete new one,
    never a truncated one, whatever kills the process in between."""
    path = str(path)
    mode = 'wb' if isinstance(data, bytes) else 'w'
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if mode == 'wb' else {'encoding': encoding})) as f:
            f.write(data)
            f.flush()
            # the rename must not reach the disk before the data does (power loss)
            os.fsync(f.fileno())
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@register_backend(ATOMIC_LOCAL)
class AtomicLocalBackend(LocalBackend):
    """mmengine's :class:`LocalBackend` with atomic ``put`` / ``put_text``.

    mmengine's ``save_checkpoint`` serialises to memory and then calls ``put``, which opens the
    final name with ``'wb'``: a kill during that write leaves a truncated ``epoch_N.pth``.
    Select this backend with ``backend_args=dict(backend='atomic_local')``.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically."""
        write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        write_atomic(obj, filepath, encoding)
