"""What every entry point shares: one-line errors and atomic writes."""
import argparse
import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, NoReturn


class UserError(Exception):
    """Bad input: shown as one line (what file, what is wrong, what to do), exit code 2."""


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


def read_json(path: str, what: str) -> Any:
    """Read a JSON file or raise a one-line :class:`UserError` naming it."""
    if not os.path.isfile(path):
        raise UserError(f'{path}: no such file ({what})')
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f'{path}: not valid JSON ({e}); expected {what}') from None


def parse_with_launcher(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Add mmpose's ``--launcher`` / ``--local-rank`` arguments, parse, and export LOCAL_RANK
    (torch.distributed.launch passes ``--local-rank``; torchrun sets the variable itself)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
