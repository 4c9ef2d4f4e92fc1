"""scripts/export_onnx.py: every variant exports and matches PyTorch; bad input writes nothing."""
import os
import sys
from types import SimpleNamespace

import onnx
import pytest

from tests.conftest import REPO, run_script
from tests.deploy.conftest import random_checkpoint

SYNTH = os.path.join(REPO, 'configs', 'synth')
ARCHS = {'res18': 'td-hm_res18{}_dark-1xb16-24e_synth-128x96.py',
         'hrnet-w16': 'td-hm_hrnet-w16{}_dark-1xb16-24e_synth-128x96.py'}
# (tag in the config name, psa_cfg): both layouts, both formulations, both ablation branches
VARIANTS = [('', None)] + [('-psa-p', dict(mode=m, formulation=f))
                           for f in ('paper', 'official') for m in ('p', 's', 'ch', 'sp')]
SMALL_HRNET = {  # one block per branch: the same kinds of layers, a quarter of the graph
    f'model.backbone.extra.stage{i}.num_blocks': (1,) * n for i, n in ((1, 1), (2, 2), (3, 3),
                                                                        (4, 4))}


def variant(arch, tag, psa_cfg):
    config = os.path.join(SYNTH, ARCHS[arch].format(tag))
    options = dict(SMALL_HRNET) if arch == 'hrnet-w16' else {}
    if psa_cfg:
        options.update({f'model.backbone.psa_cfg.{k}': v for k, v in psa_cfg.items()})
        options['model.backbone.psa_cfg.impl'] = 'fast'
    return config, options


@pytest.mark.slow          # each export runs torch's dynamo exporter: 30 s or more on 2 cores
@pytest.mark.parametrize('arch', sorted(ARCHS))
@pytest.mark.parametrize('tag,psa_cfg', VARIANTS,
                         ids=['baseline'] + [f"{c['mode']}-{c['formulation']}"
                                             for _, c in VARIANTS[1:]])
def test_every_variant_exports_within_tolerance(arch, tag, psa_cfg, tmp_path, tiny_coco,
                                                capsys):
    from psa_pose.deploy.export import export_onnx
    config, options = variant(arch, tag, psa_cfg)
    ckpt = random_checkpoint(config, str(tmp_path / 'm.pth'), options)
    out = tmp_path / 'm.onnx'
    diff = export_onnx(config, ckpt, str(out), input_shape=(96, 64), options=options,
                       check_ann=os.path.join(tiny_coco, 'test_coco.json'), check_samples=3)
    assert diff <= 1e-4
    assert f'max |onnxruntime - pytorch| = {diff:.3g} on the heatmaps of 3 crops' in \
        capsys.readouterr().out
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ['batch', 3, 96, 64]
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out_dims][1:] == [17, 24, 16]
    assert sorted(os.listdir(tmp_path)) == ['m.onnx', 'm.pth']       # one file, no .data


def _cli(capsys, *args):
    """``scripts/export_onnx.py ARGS`` in this process: its exit code and stderr."""
    from psa_pose.tools.export_onnx import main
    try:
        code = main([str(a) for a in args]) or 0
    except SystemExit as e:
        code = e.code
    return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)


@pytest.fixture(scope='module')
def small_res18(tmp_path_factory):
    folder = tmp_path_factory.mktemp('small_res18')
    config = os.path.join(SYNTH, ARCHS['res18'].format('-psa-p'))
    return config, random_checkpoint(config, str(folder / 'm.pth'))


@pytest.mark.slow
def test_above_tolerance_writes_nothing(small_res18, tmp_path, tiny_coco, capsys):
    config, ckpt = small_res18
    out = _cli(capsys, config, ckpt, '--out', tmp_path / 'm.onnx', '--input-shape', '96', '64',
               '--check-ann', os.path.join(tiny_coco, 'test_coco.json'), '--check-samples', '2',
               '--tolerance', '0')
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f'error: {tmp_path / "m.onnx"}: onnxruntime differs from PyTorch by ')
    assert line.endswith(' > 0; not written')
    assert os.listdir(tmp_path) == []


def test_checkpoint_of_another_model_is_refused(small_res18, tmp_path, tiny_coco, capsys):
    _, ckpt = small_res18
    config = os.path.join(SYNTH, ARCHS['hrnet-w16'].format('-psa-p'))
    out = _cli(capsys, config, ckpt, '--out', tmp_path / 'm.onnx',
               '--check-ann', os.path.join(tiny_coco, 'test_coco.json'))
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {ckpt}: does not fit the model of {config}: ")
    assert out.stderr.rstrip().endswith('; export it with the config it was trained with')
    assert len(out.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_baseline_checkpoint_for_a_psa_config_is_refused(tmp_path, tiny_coco, capsys):
    base = os.path.join(SYNTH, ARCHS['res18'].format(''))
    ckpt = random_checkpoint(base, str(tmp_path / 'b.pth'))
    out = _cli(capsys, os.path.join(SYNTH, ARCHS['res18'].format('-psa-p')), ckpt, '--out',
               tmp_path / 'm.onnx', '--check-ann', os.path.join(tiny_coco, 'test_coco.json'))
    assert out.returncode == 2
    psa = os.path.join(SYNTH, ARCHS['res18'].format('-psa-p'))
    assert out.stderr == (f'error: {ckpt}: does not fit the model of {psa}: lacks the 56 PSA '
                          f'keys of the PSA config: it was trained with a baseline config; '
                          f'export it with the config it was trained with\n')
    assert os.listdir(tmp_path) == ['b.pth']


def test_a_head_neither_heatmap_nor_simcc_is_refused(small_res18, tmp_path, capsys):
    config, ckpt = small_res18
    out = _cli(capsys, config, ckpt, '--out', tmp_path / 'm.onnx', '--cfg-options',
               'model.head.decoder.type=IntegralRegressionLabel')
    assert (out.returncode, out.stderr) == (2, (
        f"error: {config}: codec 'IntegralRegressionLabel' is not supported by this runtime (it "
        f"decodes MSRAHeatmap, UDPHeatmap with gaussian heatmaps and SimCCLabel without DARK "
        f"or visibility); use mmpose's inference_topdown for this model\n"))
    assert os.listdir(tmp_path) == []


def test_corrupt_release_is_refused(small_res18, tmp_path, tiny_coco, capsys):
    import shutil
    config, ckpt = small_res18
    release = tmp_path / 'm-00000000_20260101.pth'
    shutil.copy(ckpt, release)
    out = _cli(capsys, config, release, '--out', tmp_path / 'm.onnx')
    assert out.returncode == 2
    assert out.stderr.startswith(f'error: {release}: sha256 starts with ')
    assert os.listdir(tmp_path) == [release.name]


def test_missing_test_set_says_what_to_do(small_res18, tmp_path, capsys):
    config, ckpt = small_res18
    out = _cli(capsys, config, ckpt, '--out', tmp_path / 'm.onnx', '--cfg-options',
               f'test_dataloader.dataset.data_root={tmp_path}/nowhere/')
    assert out.returncode == 2
    assert out.stderr.endswith("the config's test annotations are missing, so there are no "
                               "real crops to check the export on; give --check-ann COCO.json "
                               "(a COCO keypoint file with its images beside it)\n")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_publish_adds_the_onnx_file(small_res18, tmp_path, tiny_coco):
    import hashlib
    from psa_pose.deploy.export import export_onnx
    config, ckpt = small_res18
    onnx_file = tmp_path / 'export.onnx'
    export_onnx(config, ckpt, str(onnx_file), input_shape=(96, 64),
                check_ann=os.path.join(tiny_coco, 'test_coco.json'), check_samples=2)
    out = run_script(sys.executable, os.path.join(REPO, 'scripts', 'publish_model.py'), ckpt,
                     tmp_path / 'rel' / 'res18', '--config', config, '--onnx', onnx_file,
                     '--no-zoo', cwd=tmp_path)
    files = sorted(os.listdir(tmp_path / 'rel'))
    assert len(files) == 2 and files[0].endswith('.onnx') and files[1].endswith('.pth')
    assert files[0][:-len('.onnx')] == files[1][:-len('.pth')]
    sha = hashlib.sha256((tmp_path / 'rel' / files[0]).read_bytes()).hexdigest()
    assert f'added {tmp_path / "rel" / files[0]} (sha256 {sha})' in out.stdout
    assert sha == hashlib.sha256(onnx_file.read_bytes()).hexdigest()

    bad = run_script(sys.executable, os.path.join(REPO, 'scripts', 'publish_model.py'), ckpt,
                     tmp_path / 'rel2' / 'res18', '--onnx', ckpt, '--no-zoo', cwd=tmp_path,
                     check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f'error: {ckpt}: cannot be read as ONNX (')
    assert not (tmp_path / 'rel2').exists()


def test_metafile_entry_carries_the_onnx_sha(monkeypatch, tmp_path):
    from psa_pose import zoo
    from psa_pose.config import config_files
    results = zoo.read_results()
    name = next(iter(config_files()))
    monkeypatch.setattr(zoo, 'read_results', lambda path=None: results)
    monkeypatch.setattr(zoo, 'write_results', lambda r, path=None: None)
    pages = {}
    monkeypatch.setattr(zoo, 'write_pages', lambda r: pages.update(meta=zoo.render_metafile(r)))
    zoo.add_trained(name, {'AP': 0.5}, checkpoint='r.pth',
                    onnx={'file': 'r.onnx', 'sha256': 'ab' * 32})
    assert f"  ONNX:\n    Weights: r.onnx\n    SHA256: {'ab' * 32}\n" in pages['meta']
