"""scripts/benchmark.py end to end in --quick mode, on a tiny model: the report's structure,
not its timings."""
import json

import pytest
import torch

from psa_pose import benchmark as library
from psa_pose.tools import benchmark

TINY_CONFIG = """
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16),
    head=dict(in_channels=128, deconv_out_channels=(16, ), deconv_kernel_sizes=(4, )))
"""


def test_quick_run_writes_report(tmp_path, capsys):
    config = tmp_path / 'tiny_res18.py'
    config.write_text(TINY_CONFIG)
    out = tmp_path / 'bench' / 'report.json'
    threads = torch.get_num_threads()
    try:
        benchmark.main(['--quick', '--threads', '1', '--configs', str(config),
                        '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    report = json.loads(out.read_text())

    metrics = {'params', 'flops', 'fwd_b1_ms', 'fwd_b2_ms', 'train_b2_ms', 'train_peak_mem_mb'}
    res, = report['models']
    assert res['config'] == str(config) and res['input_hw'] == [64, 64]
    assert set(res['variants']) == set(res['ratios']) == set(library.VARIANTS)
    for variant in library.VARIANTS:
        values, ratios = res['variants'][variant], res['ratios'][variant]
        assert set(values) == set(ratios) == metrics, variant
        assert all(v > 0 for v in values.values()), (variant, values)
    assert all(r == 1.0 for r in res['ratios']['baseline'].values())
    # PSA adds exactly one paper PSA block of width `planes` per basic block: 8 blocks
    added = sum(4 * c * c // 2 + 3 * c for c in (16, 32, 64, 128) for _ in range(2))
    assert res['variants']['psa_fast']['params'] == res['variants']['baseline']['params'] + added
    assert res['ratios']['psa_fast']['params'] == res['ratios']['psa_direct']['params'] > 1
    # the factored block does far fewer FLOPs than the direct one, and some
    flops = {v: res['variants'][v]['flops'] for v in library.VARIANTS}
    assert flops['baseline'] < flops['psa_fast'] < flops['psa_direct']

    row, = report['block']
    assert row['shape'] == [2, 16, 8, 6]
    for kind in ('fwd', 'train'):
        ms = row[f'{kind}_ms']
        assert set(ms) == set(library.BLOCK_VARIANTS) and all(v > 0 for v in ms.values())
        # the speedups are the ratios of the reported times
        assert row[f'{kind}_speedup_fast_vs_direct'] == ms['paper_direct'] / ms['paper_fast']
        assert row[f'{kind}_speedup_fast_vs_official'] == \
            ms['official_direct'] / ms['paper_fast']
    assert report['settings']['threads'] == 1 and report['memory_method']

    table = capsys.readouterr().out
    assert '| model | variant | params (M) | GFLOPs | fwd b1 (ms) | fwd b2 (ms) | train b2 (ms) ' \
           '| train peak mem (MiB) |' in table
    assert '| tiny_res18 | psa_fast |' in table and '(1.00)' in table


@pytest.mark.slow
def test_quick_run_with_amp_and_compile(tmp_path):
    """--amp --compile: compiled baseline and PSA beside the eager ones, each compiled ratio
    against the compiled baseline."""
    config = tmp_path / 'tiny_res18.py'
    config.write_text(TINY_CONFIG)
    threads = torch.get_num_threads()
    try:
        report = benchmark.main(['--quick', '--threads', '1', '--configs', str(config),
                                 '--no-block', '--amp', '--compile'])
    finally:
        torch.set_num_threads(threads)
    res, = report['models']
    compiled = {f'{v}_compiled' for v in library.COMPILED_FROM}
    assert set(res['variants']) == set(library.VARIANTS) | compiled
    assert all(r == 1.0 for r in res['ratios']['baseline_compiled'].values())
    assert res['variants']['psa_fast_compiled']['params'] == res['variants']['psa_fast']['params']
    assert all(v > 0 for name in compiled for k, v in res['variants'][name].items()
               if k.endswith('_ms')), res['variants']
    assert report['settings']['amp'] and report['settings']['compile']


@pytest.mark.slow          # two dynamo exports
def test_quick_run_with_onnx(tmp_path, capsys):
    """--onnx: the exported baseline and PSA timed in onnxruntime beside the eager models,
    their ratios against the exported baseline, and a table of onnxruntime / PyTorch."""
    config = tmp_path / 'tiny_res18.py'
    config.write_text(TINY_CONFIG)
    threads = torch.get_num_threads()
    try:
        report = benchmark.main(['--quick', '--threads', '1', '--configs', str(config),
                                 '--no-block', '--onnx'])
    finally:
        torch.set_num_threads(threads)
    res, = report['models']
    exported = {f'{v}_onnx' for v in library.EXPORTED_FROM}
    assert set(res['variants']) == set(library.VARIANTS) | exported
    for name in exported:
        values = res['variants'][name]
        assert {k for k in values if k.endswith('_ms')} == {'fwd_b1_ms', 'fwd_b2_ms'}
        assert values['params'] == res['variants'][name[:-len('_onnx')]]['params']
    assert all(r == 1.0 for r in res['ratios']['baseline_onnx'].values())
    ratio = res['ratios']['psa_fast_onnx']['fwd_b2_ms']
    assert ratio == res['variants']['psa_fast_onnx']['fwd_b2_ms'] / \
        res['variants']['baseline_onnx']['fwd_b2_ms']
    table = capsys.readouterr().out
    assert '| model | variant | b1: this / eager | b2: this / eager |' in table
    onnx, eager = res['variants']['psa_fast_onnx'], res['variants']['psa_fast']
    over = [f"{onnx[k] / eager[k]:.2f}" for k in ('fwd_b1_ms', 'fwd_b2_ms')]
    assert f'| tiny_res18 | psa_fast_onnx | {over[0]} | {over[1]} |' in table
