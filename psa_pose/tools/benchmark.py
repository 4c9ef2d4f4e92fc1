"""What PSA costs: time, memory, parameters and FLOPs of PSA models against mmpose's baseline.

The command-line front end of :mod:`psa_pose.benchmark` (what is measured and how is said
there): arguments, one call, the Markdown tables on stdout and ``--out`` JSON.
"""
import argparse
from typing import Optional, Sequence, Tuple

import torch

from ..benchmark import DEFAULT_CONFIGS, Settings, markdown, progress, quick_settings, run
from ..utils import one_line_errors, write_json


def parse_args(argv: Optional[Sequence[str]] = None) -> Tuple[Settings, Optional[str]]:
    """Settings and the ``--out`` path from the command line."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS),
                   help='mmpose config names or config files, baselines or PSA configs (any '
                   'backbone WithPSA supports)')
    p.add_argument('--mode', choices=('p', 's'), default='p')
    p.add_argument('--formulation', choices=('paper', 'official'), default='paper')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--fwd-batches', type=int, nargs='*', default=[1, 16],
                   help='batch sizes of the timed forwards; none: training rows only')
    p.add_argument('--train-batch', type=int, default=8)
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                   help="model input size; default: the config's codec input_size")
    p.add_argument('--repeats', type=int, default=5, help='timed runs per variant (median)')
    p.add_argument('--block-repeats', type=int, default=15)
    p.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch\'s own)')
    p.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                   help='cpu: process CPU time (CPU devices only; with --threads 1, robust to '
                   'other jobs); CUDA is always timed by wall clock after synchronising')
    p.add_argument('--amp', action='store_true',
                   help='autocast the forwards and training steps (float16 on CUDA, bfloat16 '
                   'on CPU)')
    p.add_argument('--compile', action='store_true',
                   help='also time the baseline and fast PSA compiled with torch.compile; their '
                   'ratios are to the compiled baseline')
    p.add_argument('--onnx', action='store_true',
                   help='also time the baseline and fast PSA exported to ONNX in onnxruntime '
                   '(CPU, forwards); their ratios are to the exported baseline')
    p.add_argument('--no-models', action='store_true', help='only the block benchmark')
    p.add_argument('--no-block', action='store_true', help='only the model benchmark')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: tiny inputs, one repeat (numbers mean nothing)')
    p.add_argument('--out', help='write the report as JSON here')
    a = p.parse_args(argv)
    s = Settings(configs=tuple(a.configs), mode=a.mode, formulation=a.formulation,
                 device=a.device, fwd_batches=tuple(a.fwd_batches), train_batch=a.train_batch,
                 input_size=tuple(a.input_size) if a.input_size else None, repeats=a.repeats,
                 block_repeats=a.block_repeats, models=not a.no_models, block=not a.no_block,
                 threads=a.threads, clock=a.clock, amp=a.amp, compile=a.compile,
                 onnx=a.onnx)
    return (quick_settings(s) if a.quick else s), a.out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Command-line entry point: run, print the Markdown tables, write ``--out``."""
    import warnings
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    settings, out = parse_args(argv)
    with one_line_errors():     # a config mistake: the line every entry point prints
        report = run(settings)
    print(markdown(report))
    if out:
        write_json(report, out)
        progress(f'wrote {out}')
    return report
