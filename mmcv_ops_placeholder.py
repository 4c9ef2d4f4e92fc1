"""Stand-in for mmcv's compiled ops when only mmcv-lite is installed.

Why: ``import mmpose.models`` imports modules that do ``from mmcv.ops import ...`` at import
time (``edpose_head``, ``deformable_detr_layers``), and mmcv's ``ops`` package loads the compiled
extension ``mmcv._ext``, which mmcv-lite does not ship. PyPI has mmcv only as a source
distribution (a ~15 min CPU build). The HRNet/ResNet heatmap models of this project never call a
compiled op, so an extension that fails *when an op is called* is all they need.

How: :func:`install` appends a finder to the *end* of ``sys.meta_path`` that answers only for
``mmcv._ext``. Python asks the finders in order, so a real compiled ``mmcv._ext`` (full mmcv) is
always found first and this placeholder never engages. When it does engage, every attribute of
the placeholder extension is a function that raises :class:`MissingMmcvOpError` naming the op.

It is installed by ``psa_pose/__init__.py`` and, in the project's venv, by a ``.pth`` file written
by ``scripts/install.sh`` so that plain ``import mmpose.models`` works there too. This module
imports nothing heavy: the ``.pth`` runs it at every interpreter start.
"""
import importlib.abc
import importlib.machinery
import sys
import types

EXTENSION = 'mmcv._ext'
INSTALL_HINT = ('install full mmcv with compiled ops, e.g. `MMCV_WITH_OPS=1 pip install '
                '--no-build-isolation mmcv==2.1.0` (about 15 minutes on CPU), in place of mmcv-lite')


class MissingMmcvOpError(RuntimeError):
    """A compiled mmcv op was called, but only mmcv-lite is installed."""


class _MissingExtension(types.ModuleType):
    """``mmcv._ext`` whose every op raises :class:`MissingMmcvOpError` when called."""

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)

        def missing_op(*args, **kwargs):
            raise MissingMmcvOpError(
                f"mmcv op '{name}' is not available: this environment has mmcv-lite, "
                f'which ships no compiled ops; {INSTALL_HINT}.')

        missing_op.__name__ = name
        return missing_op


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``mmcv._ext`` only; asked after every real finder."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != EXTENSION:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, origin='mmcv_ops_placeholder')

    def create_module(self, spec):
        return _MissingExtension(spec.name)

    def exec_module(self, module):
        pass


def install() -> None:
    """Append the placeholder finder to ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _PlaceholderFinder) for f in sys.meta_path):
        sys.meta_path.append(_PlaceholderFinder())


def is_placeholder(module: types.ModuleType) -> bool:
    """Whether ``module`` (e.g. ``mmcv._ext``) is this placeholder rather than compiled ops."""
    return isinstance(module, _MissingExtension)
