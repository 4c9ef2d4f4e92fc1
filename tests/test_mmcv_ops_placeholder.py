"""The stand-in for mmcv's compiled ops: engages only where they are missing, and names the op."""
import subprocess
import sys
import textwrap

import pytest

import mmcv_ops_placeholder


def test_mmpose_imports_and_a_missing_op_names_itself():
    import mmcv
    import mmpose.apis  # noqa: F401
    import mmpose.evaluation  # noqa: F401
    import mmpose.models  # noqa: F401
    from mmcv.ops import nms
    if not mmcv_ops_placeholder.is_placeholder(sys.modules['mmcv._ext']):
        pytest.fail(f'mmcv {mmcv.__version__} has compiled ops here; this test expects mmcv-lite '
                    f'as requirements-nodeps.txt pins it')
    import torch
    with pytest.raises(mmcv_ops_placeholder.MissingMmcvOpError) as err:
        nms(torch.rand(3, 4), torch.rand(3), 0.5)
    assert "mmcv op 'nms' is not available: this environment has mmcv-lite" in str(err.value)
    assert 'MMCV_WITH_OPS=1 pip install' in str(err.value)


def test_installed_last_and_only_for_mmcv_ext():
    finders = [f for f in sys.meta_path if type(f).__name__ == '_PlaceholderFinder']
    from importlib.machinery import PathFinder
    assert len(finders) == 1
    assert sys.meta_path.index(finders[0]) > sys.meta_path.index(PathFinder)
    mmcv_ops_placeholder.install()                 # idempotent
    assert sum(type(f).__name__ == '_PlaceholderFinder' for f in sys.meta_path) == 1
    assert finders[0].find_spec('mmcv.ops') is None
    assert finders[0].find_spec('numpy') is None


def test_a_real_compiled_extension_wins(tmp_path):
    """Where mmcv._ext exists (full mmcv), the placeholder never engages."""
    pkg = tmp_path / 'mmcv'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / '_ext.py').write_text('REAL = True\n')
    code = textwrap.dedent('''
        import mmcv_ops_placeholder
        mmcv_ops_placeholder.install()
        import mmcv._ext
        assert mmcv._ext.REAL and not mmcv_ops_placeholder.is_placeholder(mmcv._ext)
        print('real')
    ''')
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                         text=True, env={'PYTHONPATH': str(tmp_path), 'PATH': ''})
    assert out.stdout.strip() == 'real', out.stderr


def test_plain_mmpose_import_works_in_the_venv():
    """The venv's .pth installs the placeholder: no psa_pose import needed."""
    code = 'import mmpose.models, mmpose.apis, mmpose.evaluation; print("ok")'
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True,
                         text=True)
    assert out.stdout.strip() == 'ok', out.stderr[-2000:]
