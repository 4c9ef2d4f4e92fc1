"""The docs can be followed: every relative link resolves (file and ``#anchor``), and every
``scripts/...`` command written in the docs names a script that exists, with flags it takes.

Pages checked: README.md, configs/README.md and docs/*.md. A link must stay inside the
repository (a user's clone has nothing beside it). A ``#anchor`` must be the GitHub slug of a
heading of the target page. A command is a ``scripts/X.py``, ``scripts/X.sh`` or
``python -m psa_pose.X`` in a fenced code block or an inline code span; the ``--flags`` written
after it in the same command must be ones it takes: for a Python script, ones its ``--help``
lists; for a shell script, ones its text names or, where it passes its arguments on
(``"$@"``), ones the scripts and modules it calls take.

``--help`` runs in this process (``runpy``, as ``python scripts/X.py --help`` would, without
paying a fresh torch import per script), at most once per script per session.
"""
import contextlib
import functools
import io
import os
import re
import runpy
import sys
import warnings
from typing import Dict, Iterator, List, Optional, Set, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FENCE = re.compile(r'^\s*(```|~~~)')
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
REF_LINK = re.compile(r'^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$')
HEADING = re.compile(r'^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')
# a command: a script of this repository or a module of the package, run with its arguments
COMMAND = re.compile(r'(?<![\w.-])(scripts/[\w.-]+\.(?:py|sh)|-m\s+psa_pose(?:\.\w+)+)')
FLAG = re.compile(r'(?<![\w-])--[A-Za-z][\w-]*')
SCRIPT_NAME = re.compile(r'(?<![\w.-])scripts/[\w.-]+\.(?:py|sh)\b')


def pages(root: str = REPO) -> List[str]:
    """The pages the docs test reads, relative to ``root``."""
    found = [p for p in ('README.md', os.path.join('configs', 'README.md'))
             if os.path.exists(os.path.join(root, p))]
    docs = os.path.join(root, 'docs')
    if os.path.isdir(docs):
        found += sorted(os.path.join('docs', f) for f in os.listdir(docs) if f.endswith('.md'))
    return found


def split_page(text: str) -> Tuple[List[str], List[str]]:
    """(prose lines, code-block lines) of a Markdown page."""
    prose, code, fence = [], [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and (fence is None or m.group(1) == fence):
            fence = None if fence else m.group(1)
            continue
        (code if fence else prose).append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation but ``-`` and
    ``_`` removed, spaces to ``-``."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'<[^>]+>', '', text).replace('`', '')
    text = re.sub(r'(\*+|_{2,})', '', text)
    text = re.sub(r'[^\w\- ]', '', text.lower())
    return text.replace(' ', '-')


def anchors(text: str) -> Set[str]:
    """Every anchor of a page's headings, with GitHub's ``-1``, ``-2`` for repeated ones."""
    seen: Dict[str, int] = {}
    out = set()
    for line in split_page(text)[0]:
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f'{base}-{n}')
    return out


def links(text: str) -> Iterator[str]:
    """The link targets of a page, outside code."""
    for line in split_page(text)[0]:
        line = INLINE_CODE.sub('', line)
        for m in LINK.finditer(line):
            yield m.group(1)
        m = REF_LINK.match(line)
        if m:
            yield m.group(1)


def link_problems(root: str = REPO) -> List[str]:
    """One line per relative link of the pages that does not resolve."""
    problems = []
    for page in pages(root):
        with open(os.path.join(root, page), encoding='utf-8') as f:
            text = f.read()
        for target in links(text):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):    # http:, https:, mailto:
                continue
            path, _, anchor = target.partition('#')
            full = os.path.normpath(os.path.join(root, os.path.dirname(page), path)) if path \
                else os.path.join(root, page)
            if os.path.relpath(full, root).startswith('..'):
                problems.append(f'{page}: link {target} leaves the repository')
                continue
            if not os.path.exists(full):
                problems.append(f'{page}: link {target}: {os.path.relpath(full, root)} does not exist')
                continue
            if anchor and full.endswith('.md'):
                with open(full, encoding='utf-8') as f:
                    if anchor not in anchors(f.read()):
                        problems.append(f'{page}: link {target}: no heading #{anchor} in '
                                        f'{os.path.relpath(full, root)}')
    return problems


def commands(text: str) -> Iterator[Tuple[str, List[str]]]:
    """(script or ``-m module``, the --flags written after it) for every command in the code
    blocks and inline code spans of a page."""
    prose, code = split_page(text)
    snippets = [m.group(2) for line in prose for m in INLINE_CODE.finditer(line)]
    # a code block: comments dropped, continuation lines joined
    block = '\n'.join(re.sub(r'(^|\s)#.*$', '', line) for line in code).replace('\\\n', ' ')
    snippets += block.splitlines()
    for snippet in snippets:
        for part in re.split(r'&&|\|\||[;|]', snippet):
            m = COMMAND.search(part)
            if m:
                name = re.sub(r'\s+', ' ', m.group(1))
                yield name, FLAG.findall(part[m.end():])


def script_names(text: str) -> Set[str]:
    """Every ``scripts/X.py`` / ``scripts/X.sh`` a page names, in prose or code."""
    return set(SCRIPT_NAME.findall(text))


@functools.lru_cache(maxsize=None)
def help_text(command: str, root: str = REPO) -> str:
    """What ``python scripts/X.py --help`` (or ``python -m module --help``) prints, run once in
    this process."""
    module = command[3:] if command.startswith('-m ') else None
    argv = [module or os.path.join(root, command), '--help']
    out = io.StringIO()
    old_argv = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                warnings.catch_warnings():
            # run_module warns that the package imported the module before; harmless here
            warnings.simplefilter('ignore', RuntimeWarning)
            try:
                if module:
                    runpy.run_module(module, run_name='__main__', alter_sys=True)
                else:
                    runpy.run_path(argv[0], run_name='__main__')
            except SystemExit:
                pass
    finally:
        sys.argv = old_argv
    return out.getvalue()


def passes_on(command: str, root: str = REPO) -> List[str]:
    """The scripts and modules a shell script hands its own arguments to (none unless it
    passes ``"$@"`` or an array of them on)."""
    with open(os.path.join(root, command), encoding='utf-8') as f:
        text = f.read()
    if '"$@"' not in text and not re.search(r'\$\{\w+\[@\]', text):
        return []
    called = set(SCRIPT_NAME.findall(text)) - {command}
    called |= {'-m ' + m for m in re.findall(r'-m\s+(psa_pose(?:\.\w+)+)', text)}
    return sorted(called)


def takes_flag(command: str, flag: str, root: str = REPO, _seen: Optional[Set[str]] = None) -> bool:
    """Whether ``command`` (a script path relative to ``root`` or ``-m module``) takes ``flag``."""
    _seen = set() if _seen is None else _seen
    _seen.add(command)
    pattern = re.compile(re.escape(flag) + r'(?![\w-])')
    if command.endswith('.sh'):
        with open(os.path.join(root, command), encoding='utf-8') as f:
            if pattern.search(f.read()):
                return True
        return any(takes_flag(c, flag, root, _seen) for c in passes_on(command, root)
                   if c not in _seen)
    return bool(pattern.search(help_text(command, root)))


def command_problems(root: str = REPO, flags: bool = True) -> List[str]:
    """One line per script a page names that does not exist and, with ``flags``, per --flag
    a command is written with that its script does not take."""
    problems = []
    for page in pages(root):
        with open(os.path.join(root, page), encoding='utf-8') as f:
            text = f.read()
        for name in sorted(script_names(text)):
            if not os.path.isfile(os.path.join(root, name)):
                problems.append(f'{page}: {name} does not exist')
        if not flags:
            continue
        for command, written in commands(text):
            if not command.startswith('-m ') and not os.path.isfile(os.path.join(root, command)):
                continue                            # reported above
            for flag in written:
                if not takes_flag(command, flag, root):
                    problems.append(f'{page}: {command} {flag}: the script takes no {flag}')
    return sorted(set(problems))


# --- the repository's docs

def test_pages_exist():
    assert {'README.md', os.path.join('configs', 'README.md'),
            os.path.join('docs', 'README.md')} <= set(pages())


def test_links_resolve():
    problems = link_problems()
    assert not problems, '\n'.join(problems)


def test_scripts_named_in_the_docs_exist():
    problems = command_problems(flags=False)
    assert not problems, '\n'.join(problems)


def test_commands_take_their_flags():
    problems = command_problems()
    assert not problems, '\n'.join(problems)


def test_readme_fits_on_a_page():
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        assert len(f.read().splitlines()) <= 250


# --- the checker itself

def _write(root, files: Dict[str, str]) -> str:
    for name, text in files.items():
        path = os.path.join(str(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
    return str(root)


def test_slugs_are_githubs():
    assert slug('Guarantees on interruption and bad input') == \
        'guarantees-on-interruption-and-bad-input'
    assert slug('The `psa_cfg` argument: p, s (and *ch*)') == 'the-psa_cfg-argument-p-s-and-ch'
    assert slug('Why these pins?') == 'why-these-pins'
    assert anchors('# A\n## A\n```\n# not a heading\n```\n### B.C\n') == {'a', 'a-1', 'bc'}


def test_checker_finds_bad_links(tmp_path):
    root = _write(tmp_path, {
        'README.md': '# Top\n[ok](docs/a.md#part-one) [gone](docs/missing.md) '
                     '[bad anchor](docs/a.md#part-three) [self](#top) [web](https://x.org/y) '
                     '[out](../elsewhere.md)\n`[in code](nowhere.md)`\n'
                     '```\n[in a block](nowhere.md)\n```\n',
        'docs/a.md': '# A\n## Part one\n[up](../README.md#nope)\n'})
    assert link_problems(root) == [
        'README.md: link docs/missing.md: docs/missing.md does not exist',
        'README.md: link docs/a.md#part-three: no heading #part-three in docs/a.md',
        'README.md: link ../elsewhere.md leaves the repository',
        'docs/a.md: link ../README.md#nope: no heading #nope in README.md',
    ]


def test_checker_finds_bad_commands(tmp_path):
    tool = ('import argparse\np = argparse.ArgumentParser()\n'
            'p.add_argument("--out")\np.add_argument("--seeds")\np.parse_args()\n')
    root = _write(tmp_path, {
        'scripts/tool.py': tool,
        'scripts/wrap.sh': 'exec "$PYTHON" "$ROOT/scripts/tool.py" --launcher x "$@"\n',
        'scripts/own.sh': 'case $1 in --tiny) ;; esac\n',
        'README.md': '```bash\n'
                     'python scripts/tool.py --out x \\\n    --outt y   # --comment-flag\n'
                     'bash scripts/wrap.sh --seeds 3 --launcher x --nope\n'
                     'bash scripts/own.sh --tiny && python scripts/tool.py --seed 1\n'
                     'bash scripts/missing.sh --x\n```\n'
                     'Run `bash scripts/own.sh --big`.\n'})
    assert command_problems(root) == [
        'README.md: scripts/missing.sh does not exist',
        'README.md: scripts/own.sh --big: the script takes no --big',
        'README.md: scripts/tool.py --outt: the script takes no --outt',
        'README.md: scripts/tool.py --seed: the script takes no --seed',
        'README.md: scripts/wrap.sh --nope: the script takes no --nope',
    ]
