"""onnxruntime against PyTorch: forward latency of exported models at batch 1 and 16.

``scripts/benchmark_onnx.py [CONFIG ...] [--batches 1 16] [--repeats 5] [--out FILE.json]``

Each config's model (random weights: latency does not depend on them) is exported with
:func:`psa_pose.tools.export_onnx.export` and timed in one process: PyTorch eval forward under
``no_grad`` and an onnxruntime CPU session with the same number of threads, interleaved, the
median of ``--repeats``. The table gives each time, onnxruntime / PyTorch, and each model's
time relative to the first config (the baseline) in the same runtime.
:func:`run` is what ``psa_pose/tools/benchmark.py`` can call for an ``--onnx`` flag.
"""
import argparse
import os
import statistics
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import torch

from .. import zoo
from ..utils import one_line_errors, write_json
from .export_onnx import DEFAULT_OPSET, HeatmapGraph, export

DEFAULT_CONFIGS = ('configs/hrnet/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py',
                   'configs/hrnet/td-hm_hrnet-w32-psa-p_8xb64-210e_coco-256x192.py')


def _median_ms(fn, repeats: int) -> List[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def run(configs: Sequence[str], batches: Sequence[int] = (1, 16), repeats: int = 5,
        threads: Optional[int] = None) -> List[Dict]:
    """One row per (config, batch): PyTorch and onnxruntime median forward times (ms)."""
    import onnxruntime as ort
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for config in configs:
            cfg = zoo.load_config(config)
            h, w = zoo.input_hw(cfg)
            graph = HeatmapGraph(zoo.build_model(cfg).eval()).eval()
            path = os.path.join(folder, 'model.onnx')
            start = time.time()
            export(graph, torch.randn(2, 3, h, w), path, DEFAULT_OPSET, {})
            name = os.path.splitext(os.path.basename(config))[0]
            print(f'{name}: exported in {time.time() - start:.0f} s', flush=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            for batch in batches:
                x = torch.randn(batch, 3, h, w)
                feed = {'input': x.numpy()}
                with torch.no_grad():
                    graph(x)                                   # warm-up
                    session.run(None, feed)
                    pt, rt = [], []
                    for _ in range(repeats):                   # interleaved
                        pt += _median_ms(lambda: graph(x), 1)
                        rt += _median_ms(lambda: session.run(None, feed), 1)
                rows.append({'config': name, 'batch': batch, 'threads': threads,
                             'pytorch_ms': statistics.median(pt),
                             'onnxruntime_ms': statistics.median(rt)})
                print(f'  batch {batch}: pytorch {rows[-1]["pytorch_ms"]:.0f} ms, onnxruntime '
                      f'{rows[-1]["onnxruntime_ms"]:.0f} ms', flush=True)
            os.remove(path)
    base = {r['batch']: r for r in rows if r['config'] == rows[0]['config']}
    for r in rows:
        r['ort_over_pytorch'] = r['onnxruntime_ms'] / r['pytorch_ms']
        r['pytorch_vs_first'] = r['pytorch_ms'] / base[r['batch']]['pytorch_ms']
        r['onnxruntime_vs_first'] = r['onnxruntime_ms'] / base[r['batch']]['onnxruntime_ms']
    return rows


def table(rows: List[Dict]) -> str:
    """Markdown table of :func:`run`'s rows."""
    lines = ['| model | batch | PyTorch (ms) | onnxruntime (ms) | onnxruntime / PyTorch | '
             'PyTorch vs first | onnxruntime vs first |', '|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['config']} | {r['batch']} | {r['pytorch_ms']:.0f} | "
                     f"{r['onnxruntime_ms']:.0f} | {r['ort_over_pytorch']:.2f} | "
                     f"{r['pytorch_vs_first']:.2f} | {r['onnxruntime_vs_first']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=list(DEFAULT_CONFIGS),
                        help='the first is the baseline (default: HRNet-W32 and its PSA-p)')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, help='default: torch.get_num_threads()')
    parser.add_argument('--out', help='rows as JSON')
    args = parser.parse_args(argv)
    with one_line_errors():
        rows = run(args.configs, args.batches, args.repeats, args.threads)
        print(table(rows))
        if args.out:
            write_json(rows, args.out)
    return 0
