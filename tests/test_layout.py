"""The package's layout by job (docs/contributing.md): the command-line tools are front ends
over the library, lower layers never import higher ones, and ``import psa_pose`` loads only
what configs name."""
import ast
import os
import subprocess
import sys
from typing import Iterator, Tuple

import pytest

from .conftest import REPO

PACKAGE = os.path.join(REPO, 'psa_pose')
MAX_TOOL_LINES = 200

# Rank of each module (the longest matching prefix wins). A module may import modules of its
# own rank or lower, never higher: utils < the jobs (models, data, evaluation, engine's hooks,
# the torch-free runtime) < loading configs < what runs configs (runs, comparison, export,
# model zoo, benchmark) < the command-line tools.
RANKS = {
    'psa_pose.utils': 0,
    'psa_pose': 1,                      # the package's __init__: registration only
    'psa_pose.models': 1,
    'psa_pose.data': 1,
    'psa_pose.evaluation': 1,
    'psa_pose.engine': 1,
    'psa_pose.deploy': 1,
    'psa_pose.configcheck': 2,
    'psa_pose.config': 2,
    'psa_pose.engine.run': 3,
    'psa_pose.engine.runner': 3,
    'psa_pose.engine.preflight': 3,
    'psa_pose.engine.check_run': 3,
    'psa_pose.engine.pretrained': 3,
    'psa_pose.evaluation.compare': 3,
    'psa_pose.deploy.export': 3,
    'psa_pose.deploy.sdk': 3,
    'psa_pose.deploy.publish': 3,
    'psa_pose.deploy.demo': 3,
    'psa_pose.zoo': 3,
    'psa_pose.benchmark': 3,
    'psa_pose.tools': 4,
}


def rank(module: str) -> int:
    best = max((p for p in RANKS if module == p or module.startswith(p + '.')), key=len)
    return RANKS[best]


def modules() -> Iterator[Tuple[str, str]]:
    """(dotted name, path) of every module of the package."""
    for root, _, files in os.walk(PACKAGE):
        for file in sorted(files):
            if file.endswith('.py'):
                path = os.path.join(root, file)
                rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
                yield rel[:-len('.__init__')] if rel.endswith('.__init__') else rel, path


def imports(module: str, path: str) -> Iterator[Tuple[int, str]]:
    """(line, dotted name) of every psa_pose module ``module`` imports, function-local ones
    included (``from X import name`` counts as X.name where that is a module, else X)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                prefix = '.'.join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ''
            names = [f'{prefix}.{a.name}' if _is_module(f'{prefix}.{a.name}') else prefix
                     for a in node.names]
        else:
            continue
        for name in names:
            if name == 'psa_pose' or name.startswith('psa_pose.'):
                yield node.lineno, name


def _is_module(name: str) -> bool:
    path = os.path.join(REPO, *name.split('.'))
    return os.path.isfile(path + '.py') or os.path.isdir(path)


def test_no_layer_imports_a_higher_one():
    wrong = [f'{path}:{line}: {module} (rank {rank(module)}) imports {name} (rank {rank(name)})'
             for module, path in modules() for line, name in imports(module, path)
             if rank(name) > rank(module)]
    assert wrong == []


def test_no_tool_imports_another_tool():
    wrong = [f'{path}:{line}: imports {name}' for module, path in modules()
             if module.startswith('psa_pose.tools.')
             for line, name in imports(module, path)
             if name.startswith('psa_pose.tools') and name != module]
    assert wrong == []


def test_tools_are_front_ends():
    long = {}
    for module, path in modules():
        if module.startswith('psa_pose.tools.'):
            with open(path, encoding='utf-8') as f:
                lines = sum(1 for _ in f)
            if lines > MAX_TOOL_LINES:
                long[module] = lines
    assert long == {}


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rank check on a made-up module: the checker itself can fail."""
    bad = tmp_path / 'bad.py'
    bad.write_text('def f():\n    from ..tools import train\n')
    found = list(imports('psa_pose.models.bad', str(bad)))
    assert found == [(2, 'psa_pose.tools.train')]
    assert rank(found[0][1]) > rank('psa_pose.models.bad')


def test_import_registers_only():
    """A fresh interpreter's ``import psa_pose`` (the process boundary is what is tested: a
    module imported once stays imported) loads the registering modules and nothing else of
    the package, and no ONNX runtime."""
    code = ('import sys, psa_pose; print(" ".join(sorted(m for m in sys.modules if '
            'm.startswith(("psa_pose", "onnx")))))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out == [
        'psa_pose', 'psa_pose.data', 'psa_pose.data.coco', 'psa_pose.engine',
        'psa_pose.engine.fileio', 'psa_pose.engine.hooks', 'psa_pose.engine.internals',
        'psa_pose.engine.preemption', 'psa_pose.engine.workdir', 'psa_pose.models',
        'psa_pose.models.backbones', 'psa_pose.models.backbones.hrnet',
        'psa_pose.models.backbones.plugin', 'psa_pose.models.backbones.psa_mixin',
        'psa_pose.models.backbones.resnet', 'psa_pose.models.checkpoint', 'psa_pose.models.psa',
        'psa_pose.models.psa_fast', 'psa_pose.utils']


@pytest.mark.parametrize('blocked', [('torch', 'mmpose', 'mmengine', 'mmcv')])
def test_the_runtime_imports_without_torch(blocked):
    """``psa_pose.deploy.onnx_infer`` through the package, where torch and mmpose cannot be
    imported (a deployment machine with onnxruntime only)."""
    code = (f'import sys; sys.modules.update(dict.fromkeys({list(blocked)!r})); '
            'import psa_pose, psa_pose.deploy.onnx_infer as m; print(m.OnnxPoseModel.__name__, '
            'psa_pose.__all__)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    assert out == "OnnxPoseModel ['__version__']\n"
