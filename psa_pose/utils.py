"""The bottom layer: one-line user errors, atomic writes and JSON reading.

Every other module may import this one; it imports nothing of the package. A
:class:`UserError` is bad input a person can fix: the entry points print it as one line,
``error: <file>: <what is wrong>; <what to do>``, with exit code 2.
"""
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, Optional


class UserError(Exception):
    """Bad input: shown as one line (what file, what is wrong, what to do), exit code 2."""


def first_line(e: BaseException) -> str:
    """``Type: first sentence`` of an exception, short enough for one line."""
    lines = str(e).strip().splitlines()
    text = lines[0].split('. ')[0][:120] if lines else ''
    return f'{type(e).__name__}: {text}' if text else type(e).__name__


def fail(message: str, code: int = 2) -> NoReturn:
    print(f'error: {message}', file=sys.stderr)
    sys.exit(code)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a :class:`UserError` into one line on stderr and exit code 2."""
    try:
        yield
    except UserError as e:
        fail(str(e))


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds,
    so that an error or a kill never leaves a half-written file under the final name."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}')
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(data: Any, path: str, sort_keys: bool = False) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=sort_keys)
        f.write('\n')


def read_json(path: str, what: str, fix: Optional[str] = None, missing: Optional[str] = None,
              invalid: Optional[Callable[[str], 'UserError']] = None) -> Any:
    """Read a JSON file or raise a one-line :class:`UserError` naming it: the one JSON reader.

    The lines: ``missing`` (default ``<path>: no such file (<what>)``) and, for a file that is
    not JSON, ``invalid(<the parser's words>)`` (default ``<path>: not valid JSON (<words>);
    <fix>``, where ``fix`` defaults to ``expected <what>``).
    """
    if not os.path.isfile(path):
        raise UserError(missing or f'{path}: no such file ({what})')
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if invalid is not None:
            raise invalid(str(e)) from None
        raise UserError(f'{path}: not valid JSON ({e}); {fix or f"expected {what}"}') from None


def sha256_of(path: str, report: Optional[Callable[[int], None]] = None) -> str:
    """The sha256 (hex) of a file, read in 1 MiB chunks; ``report(bytes_read)`` after each."""
    digest, done = hashlib.sha256(), 0
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
            done += len(chunk)
            if report:
                report(done)
    return digest.hexdigest()


def download(url: str, path: str, sha256: Optional[str] = None, fix: str = '',
             progress: bool = False) -> None:
    """Fetch ``url`` (http(s) or file://) to ``path`` with ``torch.hub.download_url_to_file``,
    which writes beside ``path`` and renames (an interrupted download leaves nothing under the
    final name) and, given ``sha256`` (or a prefix of it), refuses a file with another hash.
    A failure is one :class:`UserError` line ending in ``fix``."""
    import torch.hub          # here: the bottom layer imports no torch at import time
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, path, hash_prefix=sha256, progress=progress)
    except RuntimeError as e:           # torch.hub's "invalid hash value"
        raise UserError(f'{url}: the download\'s sha256 is not the recorded {sha256[:16]}... '
                        f'({first_line(e)}); {fix}') from None
    except OSError as e:                # URLError, HTTPError, a missing file:// file
        raise UserError(f'{url}: cannot be fetched ({e}); {fix}') from None
