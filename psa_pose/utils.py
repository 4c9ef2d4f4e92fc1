"""The bottom layer: one-line user errors, atomic writes and JSON reading.

Every other module may import this one; it imports nothing of the package. A
:class:`UserError` is bad input a person can fix: the entry points print it as one line,
``error: <file>: <what is wrong>; <what to do>``, with exit code 2.
"""
import errno
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, NoReturn, Optional


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


def temp_path(path: str, suffix: str = '') -> str:
    """The temporary name :func:`atomic_path` writes ``path`` under: in ``path``'s own folder
    (so that the final rename never crosses file systems), hidden, with the writer's PID
    (``.NAME.tmpPID``; the training's clean-up removes those of dead processes only) and
    ``suffix`` (for writers that check the file name's ending, e.g. ``.pkl``)."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}{suffix}')


@contextmanager
def no_space_errors(path: str) -> Iterator[None]:
    """A full disk (``ENOSPC``, or a quota: ``EDQUOT``) while writing ``path`` as one line,
    ``no space left writing PATH; nothing was changed``, instead of a traceback. For blocks
    that write only temporaries, so that the sentence is true."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(f'no space left writing {path}; nothing was changed (free some space '
                        f'on {os.path.dirname(os.path.abspath(path))}\'s file system and run '
                        f'the command again)') from None


@contextmanager
def atomic_path(path: str, suffix: str = '') -> Iterator[str]:
    """Yield a temporary path beside ``path`` (:func:`temp_path`); rename it to ``path`` only if
    the block succeeds, so that an error, a full disk or a kill never leaves a half-written file
    under the final name. A full disk is one line (:func:`no_space_errors`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        with no_space_errors(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def same_path(a: str, b: str) -> bool:
    """Whether two paths name one file (resolved links and ``..``, or one inode: hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:             # one of them does not exist (yet)
        return False


def check_outputs(outputs: Dict[str, Optional[str]], inputs: Dict[str, Optional[str]]) -> None:
    """Refuse (one line) an output that would replace an input or another output: both given
    as ``{option or role: path}``; None paths are ignored."""
    given = [(k, v) for k, v in inputs.items() if v]
    for name, path in ((k, v) for k, v in outputs.items() if v):
        for other, source in given:
            if same_path(path, source):
                raise UserError(f'{path}: {name} is the same file as {other} ({source}); an '
                                f'output never replaces an input: choose another {name}')
        given.append((name, path))


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
