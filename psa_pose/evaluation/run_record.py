"""The files a run's ``metrics.json`` points at, stored so that the run folder stands alone.

``test.py --out`` records the COCO results file it wrote and the ground truth they were scored
on; ``compare_ap.py`` re-scores them. A file inside the run folder is stored relative to it, so
that a copied or moved experiment folder reads its own files, never the original's; every file
is stored with its sha256, so that a file changed (or replaced by another run) since the test is
refused in one line instead of being scored as if it were the run's.
"""
import os
import os.path as osp
from typing import Any, Dict, Optional

from ..utils import UserError, sha256_of


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (both resolved: links, ``..``)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def record_file(key: str, path: Optional[str], run_dir: str,
                content: Optional[str] = None) -> Dict[str, Any]:
    """``{key: where, key_sha256: digest}`` for a metrics file in ``run_dir``: ``where`` is
    relative to ``run_dir`` when ``path`` is inside it, else absolute (data outside the run,
    e.g. the ground truth); ``{key: None}`` without a path. ``content``: where the bytes are
    now, when ``path`` is still being written (its temporary)."""
    if not path:
        return {key: None}
    where = osp.relpath(osp.realpath(path), osp.realpath(run_dir)) if inside(path, run_dir) \
        else osp.abspath(path)
    return {key: where, f'{key}_sha256': sha256_of(content or path)}


def recorded_file(data: Dict[str, Any], key: str, run_dir: str, source: str,
                  within: bool) -> Optional[str]:
    """The file ``data[key]`` names (relative names from ``run_dir``), checked: it exists, its
    sha256 is the recorded one (where one was recorded) and, with ``within``, it is inside
    ``run_dir``. None when ``data`` names none. Raises a one-line :class:`UserError` naming the
    file otherwise; never falls back to another file."""
    where = data.get(key)
    if not where:
        return None
    path = where if osp.isabs(where) else osp.join(run_dir, where)
    if within and not inside(path, run_dir):
        raise UserError(f'{source}: its {key} {where} is outside the run folder {run_dir} '
                        f'(a copied folder, or one written by an older test.py); only files '
                        f'inside the folders given are read: test the run again with --out '
                        f'{osp.join(run_dir, "metrics.json")} --coco-results '
                        f'{osp.join(run_dir, "results.json")}')
    if not osp.isfile(path):
        raise UserError(f'{path}: missing, but {source} names it as {key}; restore it or test '
                        f'the run again')
    sha = data.get(f'{key}_sha256')
    if sha and sha256_of(path) != sha:
        raise UserError(f'{path}: changed since {source} was written (sha256 differs from its '
                        f'{key}_sha256); these are not the tested run\'s files: restore it or '
                        f'test the run again')
    return path
