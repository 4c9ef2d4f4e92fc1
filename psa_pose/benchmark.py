"""What PSA costs: time, memory, parameters and FLOPs of PSA models against mmpose's baseline.

For each config (an mmpose top-down config name or a config file) three models are built from
the same config: ``baseline`` (mmpose's own backbone), ``psa_direct`` and ``psa_fast`` (the PSA
backbone with ``impl='direct'`` / ``'fast'``; paper formulation, mode ``p`` unless told
otherwise). A baseline config gets its PSA twin as this project's configs make it (PSAHRNet,
PSAResNet, or WithPSA around any other backbone: RTMPose's CSPNeXt, ResNetV1d, ResNeXt); a PSA
config (``-psa-*``) is measured against the baseline it changes (:func:`paired_backbones`). All
variants are measured in one process, interleaved (each repeat runs every variant once, in
rotating order) and summarised by the median, so that load from other jobs hits all of them
alike:

- ``fwd_b{N}_ms``: forward of the whole pose model (backbone + head, heatmaps or SimCC vectors
  out), eval mode, ``torch.no_grad``, batch N;
- ``train_b{N}_ms``: one training step, batch N: forward, the head's own loss against random
  target heatmaps (a SimCC head: the mean square of its outputs), backward and an SGD
  (momentum) step;
- ``train_peak_mem_mb``: peak memory of such a step. On CUDA ``torch.cuda.max_memory_allocated``.
  On CPU the process's resident set is no use (glibc keeps freed blocks, other allocations mix
  in), so the step is run under ``torch.profiler`` with ``profile_memory=True`` and its
  allocation events are replayed in order: the highest running total of tensor bytes allocated
  and not yet freed during the step, plus the bytes held before it (parameters, buffers,
  optimizer state, the batch and its targets);
- ``params``; ``flops`` of one ``1 x 3 x H x W`` forward as mmengine counts them
  (``mmengine.analysis.FlopAnalyzer``, the counter behind ``get_model_complexity_info``): it
  traces the aten ops and counts convs, matmul/bmm/linear and norms, not element-wise ops.

Forwards at batch 1 are repeated three times as often as the others (they are short). Wall
time is the default; ``--threads 1 --clock cpu`` measures process CPU time instead, which
other jobs on the machine barely disturb.

With ``--compile`` the baseline and fast PSA are also timed compiled (``torch.compile``), with
``--onnx`` also exported to ONNX (:func:`psa_pose.deploy.export.export`) and run by
onnxruntime's CPU provider with as many threads as torch (forwards only); these variants'
ratios are to the baseline treated the same way, and a second table gives each runtime's
forward time over eager PyTorch's.

A block benchmark times the PSA block alone (forward under ``no_grad``, and forward+backward)
for the paper formulation fast and direct and the released (``official``) formulation.
"""
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .utils import UserError

DEFAULT_CONFIGS = ('td-hm_hrnet-w32_8xb64-210e_coco-256x192',
                   'td-hm_res50_8xb64-210e_coco-256x192')
VARIANTS = ('baseline', 'psa_direct', 'psa_fast')
COMPILED_FROM = ('baseline', 'psa_fast')       # with --compile, also these compiled
EXPORTED_FROM = ('baseline', 'psa_fast')       # with --onnx, also these in onnxruntime
# (N, C, H, W): HRNet-W32's four branch widths at 256x192, batch 16, and the batch-1 case
DEFAULT_BLOCK_SHAPES = ((16, 32, 64, 48), (1, 32, 64, 48), (16, 64, 32, 24), (16, 128, 16, 12),
                        (16, 256, 8, 6))
BLOCK_VARIANTS = ('paper_fast', 'paper_direct', 'official_direct', 'official_fast')


@dataclass
class Settings:
    """What to measure and how often."""
    configs: Sequence[str] = DEFAULT_CONFIGS
    mode: str = 'p'
    formulation: str = 'paper'
    device: str = 'cpu'
    fwd_batches: Sequence[int] = (1, 16)
    train_batch: int = 8
    input_size: Optional[Tuple[int, int]] = None      # (H, W); None: the config's codec
    repeats: int = 5
    warmup: int = 1
    block_shapes: Sequence[Tuple[int, int, int, int]] = DEFAULT_BLOCK_SHAPES
    block_repeats: int = 15
    models: bool = True
    block: bool = True
    threads: Optional[int] = None
    clock: str = 'wall'          # 'cpu': process CPU time, robust to other jobs with 1 thread
    amp: bool = False            # autocast: float16 on CUDA, bfloat16 on CPU
    compile: bool = False        # also compiled baseline and fast PSA (torch.compile)
    onnx: bool = False           # also their ONNX exports' forwards in onnxruntime (CPU)


def quick_settings(base: Settings) -> Settings:
    """Tiny sizes and one repeat: a smoke run of every code path, not a measurement."""
    return Settings(**{**asdict(base), 'fwd_batches': (1, 2), 'train_batch': 2,
                       'input_size': (64, 64), 'repeats': 1, 'warmup': 0,
                       'block_shapes': ((2, 16, 8, 6), ), 'block_repeats': 1})


def progress(msg: str) -> None:
    """One line of progress on stderr (stdout carries the tables)."""
    print(msg, file=sys.stderr, flush=True)


# -- models ------------------------------------------------------------------------------------
def paired_backbones(backbone: dict) -> Tuple[dict, dict]:
    """(baseline, PSA) backbone configs of a config's backbone, the PSA one without its
    ``psa_cfg``. A baseline config (mmpose's) is the baseline; its PSA twin is ``PSAHRNet`` /
    ``PSAResNet`` for HRNet / ResNet and ``WithPSA`` around it otherwise, as this project's
    ``-psa-*`` configs make it. A PSA config is the PSA side (its ``psa_stages`` kept) and its
    baseline is the backbone it changes: the inner backbone of ``WithPSA``, the mmpose type of
    ``PSAHRNet`` / ``PSAResNet`` (the pair :func:`psa_pose.config.parse_name`'s ``baseline``
    names)."""
    from .models.backbones import PSA_BACKBONES
    backbone = dict(backbone)
    plain = {psa: base for base, psa in PSA_BACKBONES.items()}
    if backbone['type'] == 'WithPSA':
        return dict(backbone['backbone']), backbone
    if backbone['type'] in plain:
        base = {k: v for k, v in backbone.items() if k not in ('psa_cfg', 'psa_stages')}
        return {**base, 'type': plain[backbone['type']]}, backbone
    if backbone['type'] in PSA_BACKBONES:
        return backbone, {**backbone, 'type': PSA_BACKBONES[backbone['type']]}
    return backbone, dict(type='WithPSA', backbone=backbone)


def build_variant(cfg, variant: str, mode: str = 'p', formulation: str = 'paper') -> nn.Module:
    """The config's pose model with its backbone as ``variant`` (one of :data:`VARIANTS`;
    :func:`paired_backbones`), without pretrained weights. The PSA variants have ``mode`` and
    ``formulation``, whatever a PSA config says."""
    from mmengine.config import Config

    from . import config as psa_config
    model_cfg = cfg.model.copy()
    baseline, psa = paired_backbones(model_cfg.backbone)
    model_cfg.backbone = baseline if variant == 'baseline' else {
        **psa, 'psa_cfg': dict(mode=mode, formulation=formulation,
                               impl=variant.split('_', 1)[1])}
    torch.manual_seed(0)
    with psa_config.psa_errors_as_lines(cfg):
        return psa_config.build_model(Config(dict(model=model_cfg)))


def input_hw(cfg, settings: Settings) -> Tuple[int, int]:
    """(H, W) of the model input: the settings' override, else the config's codec."""
    from . import config as psa_config
    return tuple(settings.input_size) if settings.input_size is not None else psa_config.input_hw(cfg)


def _flops(model: nn.Module, hw: Tuple[int, int]) -> Optional[int]:
    """:func:`psa_pose.config.count_flops`, or None: an analysis failure must not sink the
    timing run."""
    from . import config as psa_config
    try:
        return psa_config.count_flops(model, hw)
    except Exception as e:  # noqa: BLE001
        progress(f'  FLOPs analysis failed: {type(e).__name__}: {e}')
        return None


def autocast(device: str, amp: bool):
    """Autocast as ``--amp`` asks (float16 on CUDA, bfloat16 on CPU), or a no-op context."""
    import contextlib
    if not amp:
        return contextlib.nullcontext()
    kind = 'cuda' if device.startswith('cuda') else 'cpu'
    return torch.autocast(kind, dtype=torch.float16 if kind == 'cuda' else torch.bfloat16)


class TrainStep:
    """One SGD training step on a fixed random batch; the head's loss against random targets
    (under autocast with ``amp``; no loss scaling, which costs nothing to time)."""

    def __init__(self, model: nn.Module, batch: int, hw: Tuple[int, int], device: str,
                 amp: bool = False) -> None:
        self.device, self.amp = device, amp
        self.model = model.to(device)
        self.model.train()
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, *hw, generator=gen).to(device)
        with torch.no_grad():
            out = self.model(self.x[:1], None, mode='tensor')
        self.heatmaps = isinstance(out, torch.Tensor) and out.dim() == 4 and hasattr(
            getattr(model, 'head', None), 'loss_module')
        shape = (batch, *out.shape[1:]) if isinstance(out, torch.Tensor) else (1, )
        self.target = torch.rand(shape, generator=gen).to(device)
        self.weight = torch.ones(shape[:2], device=device)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            out = self.model(self.x, None, mode='tensor')
            if self.heatmaps:
                loss = self.model.head.loss_module(out.float(), self.target, self.weight)
            else:    # a head without a heatmap loss: any scalar that reaches every output
                outs = out if isinstance(out, (tuple, list)) else (out, )
                loss = sum(o.float().square().mean() for o in outs)
        loss.backward()
        self.opt.step()

    def held_bytes(self) -> int:
        """Bytes alive between steps: parameters, buffers, optimizer state, batch, targets."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        for state in self.opt.state.values():
            tensors += [t for t in state.values() if isinstance(t, torch.Tensor)]
        tensors += [self.x, self.target, self.weight]
        seen = {}
        for t in tensors:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return sum(seen.values())


def allocation_events(step: Callable[[], None]) -> List[Tuple[int, int]]:
    """``(time_ns, bytes)`` of every CPU tensor allocation (``bytes > 0``) and free
    (``bytes < 0``) during ``step()``, in no particular order.

    The one place that touches torch's private profiler API (``torch._C._profiler``, the
    kineto event tree); ``tests/test_benchmark_lib.py`` fails loudly when a torch release
    moves it. Raises ImportError / AttributeError then.
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        e = stack.pop()
        stack.extend(e.children)
        if e.typed[0] == _EventType.Allocation and e.typed[1].device.type == 'cpu':
            events.append((e.start_time_ns, e.typed[1].alloc_size))
    return events


def replay_peak(events: Sequence[Tuple[int, int]]) -> int:
    """The highest running total of bytes allocated and not yet freed, events in time order."""
    total = peak = 0
    for _, size in sorted(events):
        total += size
        peak = max(peak, total)
    return peak


def _cpu_step_peak_bytes(step: Callable[[], None]) -> Optional[int]:
    """Highest running total of CPU tensor bytes allocated and not freed during ``step()``,
    or None (said on stderr) where this torch's profiler cannot tell."""
    try:
        return replay_peak(allocation_events(step))
    except (ImportError, AttributeError) as e:   # private profiler API moved: say so, go on
        progress(f'  CPU memory measurement unavailable in this torch: {e}')
        return None


def train_peak_mem_mb(step: TrainStep, device: str) -> Optional[float]:
    """Peak memory of one training step in MiB (see the module docstring for how)."""
    step()                                    # optimizer state exists from here on
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    # free the last step's gradients outside the profiled window: the profiler only knows
    # the size of blocks allocated inside it
    step.opt.zero_grad(set_to_none=True)
    peak = _cpu_step_peak_bytes(step)
    return None if peak is None else (step.held_bytes() + peak) / 2**20


# -- timing ------------------------------------------------------------------------------------
def cuda_synchronised_clock() -> float:
    """Wall time after the GPU has finished what was queued: CUDA kernels run asynchronously,
    so a clock read without this times only their launch."""
    torch.cuda.synchronize()
    return time.perf_counter()


def clock_for(device: str, clock: str) -> Callable[[], float]:
    """The timer for ``Settings.clock`` on ``device``: CPU process time (``'cpu'``, CPU
    devices only), wall time, or on CUDA wall time read after synchronising."""
    if device.startswith('cuda'):
        check_clock(device, clock)
        return cuda_synchronised_clock
    return time.process_time if clock == 'cpu' else time.perf_counter


def check_clock(device: str, clock: str) -> None:
    """Refuse process CPU time with a CUDA device: it would time kernel launches, not kernels."""
    if device.startswith('cuda') and clock == 'cpu':
        raise UserError(f'--clock cpu counts this process\'s CPU time, which does not wait for '
                        f'the GPU, so it cannot time --device {device}; use --clock wall (CUDA '
                        f'is then timed after torch.cuda.synchronize())')


def time_interleaved(fns: Dict[str, Callable[[], object]], repeats: int, warmup: int,
                     label: str, clock: str = 'wall', device: str = 'cpu') -> Dict[str, float]:
    """Median milliseconds per call of each function; every repeat runs each once, the order
    rotating, so that drift and other jobs' load fall on all of them alike.

    Each call is timed by ``torch.utils.benchmark.Timer`` with :func:`clock_for`'s timer: on
    CUDA wall time read after ``torch.cuda.synchronize()`` (before and after the call), so
    what is timed is the kernels; ``clock='cpu'`` (CPU devices only) counts this process's
    CPU time: with one thread it is not inflated by other jobs taking the core (with more, it
    counts threads' spin-waits).
    """
    from torch.utils.benchmark import Timer
    timer = clock_for(device, clock)
    timers = {name: Timer('fn()', globals={'fn': fn}, label=label, sub_label=name, timer=timer)
              for name, fn in fns.items()}
    names = list(fns)
    for i in range(warmup):
        for name in names:
            progress(f'  {label}: warm-up {name}')
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            progress(f'  {label}: {name} ({r + 1}/{repeats})')
            times[name].append(timers[name].timeit(1).times[0] * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _forward_fn(model: nn.Module, x: torch.Tensor, amp: bool) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad(), autocast(x.device.type, amp):
            return model(x, None, mode='tensor')
    return run


def benchmark_config(config: str, settings: Settings) -> dict:
    """All measurements of one config: ``{'config', 'input_hw', 'variants', 'ratios'}``."""
    from . import config as psa_config
    cfg = psa_config.load_config(config)
    hw = input_hw(cfg, settings)
    if cfg.model.head.get('decoder', {}).get('type') == 'SimCCLabel' \
            and hw != psa_config.input_hw(cfg):
        # RTMPose's head flattens the feature map: its size goes with the input's
        psa_config.set_input_shape(cfg, hw)
    dev = settings.device
    progress(f'[{config}] building {", ".join(VARIANTS)}')
    models = {v: build_variant(cfg, v, settings.mode, settings.formulation) for v in VARIANTS}
    results: Dict[str, dict] = {v: {} for v in VARIANTS}
    for v, model in models.items():
        progress(f'[{config}] params and FLOPs: {v}')
        results[v]['params'] = psa_config.count_params(model)
        results[v]['flops'] = _flops(model, hw)
        model.to(dev).eval()
    if settings.compile:
        import copy

        from .models.compile import compile_tensor_path
        for v in COMPILED_FROM:
            # compiled on first call (the warm-up): one graph per batch size and mode
            models[f'{v}_compiled'] = compile_tensor_path(copy.deepcopy(models[v]))
            results[f'{v}_compiled'] = dict(results[v])

    sessions = {}
    if settings.onnx:
        for v in EXPORTED_FROM:
            progress(f'[{config}] exporting {v} to ONNX')
            sessions[f'{v}_onnx'] = onnx_session(models[v], hw)
            results[f'{v}_onnx'] = dict(results[v])

    gen = torch.Generator().manual_seed(0)
    for batch in settings.fwd_batches:
        x = torch.randn(batch, 3, *hw, generator=gen).to(dev)
        label = f'[{config}] forward, batch {batch}'
        # batch-1 forwards are short, so noisier and cheap to repeat
        repeats = settings.repeats * (3 if batch == 1 else 1)
        fns = {v: _forward_fn(m, x, settings.amp) for v, m in models.items()}
        feed = {'input': x.cpu().numpy()}
        fns.update({v: (lambda s=s: s.run(None, feed)) for v, s in sessions.items()})
        medians = time_interleaved(fns, repeats, settings.warmup, label, settings.clock, dev)
        for v, ms in medians.items():
            results[v][f'fwd_b{batch}_ms'] = ms
    del sessions

    steps = {v: TrainStep(m, settings.train_batch, hw, dev, settings.amp)
             for v, m in models.items()}
    label = f'[{config}] training step, batch {settings.train_batch}'
    medians = time_interleaved(steps, settings.repeats, max(settings.warmup, 1), label,
                               settings.clock, dev)
    for v, ms in medians.items():
        results[v][f'train_b{settings.train_batch}_ms'] = ms
    for v, step in steps.items():
        progress(f'[{config}] training-step peak memory: {v}')
        results[v]['train_peak_mem_mb'] = train_peak_mem_mb(step, dev)
    del steps, models

    # compiled / exported variants against the baseline treated alike, the others against
    # mmpose's eager one
    ratios = {}
    for v, r in results.items():
        kind = next((k for k in ('_compiled', '_onnx') if v.endswith(k)), '')
        base = results['baseline' + kind]
        ratios[v] = {k: (r[k] / base[k] if r[k] is not None and base.get(k) else None)
                     for k in r}
    return dict(config=config, input_hw=list(hw), variants=results, ratios=ratios)


def onnx_session(model: nn.Module, hw: Tuple[int, int]):
    """An onnxruntime CPU session of ``model``'s tensor path, exported as ``export_onnx``
    does (dynamic batch), with as many threads as torch uses."""
    import tempfile

    import onnxruntime as ort

    from . import config as psa_config
    from .deploy.export import DEFAULT_OPSET, export
    import copy
    # the exporter traces on CPU; the timed model stays where it is
    graph = psa_config.TensorForward(copy.deepcopy(model).cpu().eval()).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'model.onnx')
        export(graph, torch.randn(2, 3, *hw), path, DEFAULT_OPSET, {})
        return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


# -- the block alone ---------------------------------------------------------------------------
def _block(c: int, variant: str, mode: str, dev: str) -> nn.Module:
    from psa_pose.models import PolarizedSelfAttention
    formulation, impl = variant.split('_')
    torch.manual_seed(0)
    return PolarizedSelfAttention(c, mode, formulation, impl=impl).to(dev)


def benchmark_block(settings: Settings) -> List[dict]:
    """Forward (no_grad) and forward+backward time of the PSA block alone, per shape. With
    ``amp`` the input is in autocast's dtype (as a conv under autocast hands it over) and the
    block runs under autocast."""
    rows = []
    dev = settings.device
    for shape in settings.block_shapes:
        shape = tuple(shape)
        blocks = {v: _block(shape[1], v, settings.mode, dev) for v in BLOCK_VARIANTS}
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=gen).to(dev)
        grad_out = torch.randn(shape, generator=gen).to(dev)
        if settings.amp:
            with autocast(dev, True):
                dtype = torch.get_autocast_dtype(torch.device(dev).type)
            x, grad_out = x.to(dtype), grad_out.to(dtype)
        xg = x.clone().requires_grad_()

        def fwd(block: nn.Module) -> Callable[[], object]:
            def run() -> object:
                with torch.no_grad(), autocast(dev, settings.amp):
                    return block(x)
            return run

        def fwd_bwd(block: nn.Module) -> Callable[[], object]:
            def run() -> object:
                block.zero_grad(set_to_none=True)
                xg.grad = None
                with autocast(dev, settings.amp):
                    out = block(xg)
                out.backward(grad_out)
            return run

        label = f'[PSA block {shape}]'
        reps, warm = settings.block_repeats, max(settings.warmup, 1)
        row = dict(shape=list(shape), mode=settings.mode,
                   fwd_ms=time_interleaved({v: fwd(b) for v, b in blocks.items()}, reps, warm,
                                           label + ' forward', settings.clock, dev),
                   train_ms=time_interleaved({v: fwd_bwd(b) for v, b in blocks.items()}, reps,
                                             warm, label + ' forward+backward',
                                             settings.clock, dev))
        for kind in ('fwd', 'train'):
            ms = row[f'{kind}_ms']
            row[f'{kind}_speedup_fast_vs_direct'] = ms['paper_direct'] / ms['paper_fast']
            row[f'{kind}_speedup_fast_vs_official'] = ms['official_direct'] / ms['paper_fast']
        rows.append(row)
    return rows


# -- report ------------------------------------------------------------------------------------
def _cell(value: Optional[float], ratio: Optional[float], fmt: str) -> str:
    if value is None:
        return 'n/a'
    return f'{value:{fmt}} ({ratio:.2f})' if ratio is not None else f'{value:{fmt}}'


def _runtime_table(res: dict) -> List[str]:
    """Forward time of each compiled / exported variant over the same model in eager PyTorch."""
    other = [v for v in res['variants'] if v.endswith(('_compiled', '_onnx'))]
    if not other:
        return []
    keys = [k for k in res['variants']['baseline'] if k.startswith('fwd_')]
    if not keys:                # --fwd-batches with no value: no forwards to compare
        return []
    lines = ['| model | variant | ' + ' | '.join(f'{k[4:-3]}: this / eager' for k in keys)
             + ' |', '|' + '---|' * (2 + len(keys))]
    name = os.path.basename(res['config']).replace('.py', '')
    for v in other:
        eager = res['variants'][v.rsplit('_', 1)[0]]
        cells = [f"{res['variants'][v][k] / eager[k]:.2f}" for k in keys]
        lines.append(f'| {name} | {v} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def markdown(report: dict) -> str:
    """The report as Markdown tables: each value with its ratio to the baseline in brackets."""
    lines = []
    for res in report.get('models', []):
        keys = [k for k in res['variants']['baseline'] if k not in ('params', 'flops')]
        head = ['model', 'variant', 'params (M)', 'GFLOPs'] + [
            k.replace('_ms', ' (ms)').replace('_mb', ' (MiB)').replace('_', ' ') for k in keys]
        lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        name = os.path.basename(res['config']).replace('.py', '')
        for v, r in res['variants'].items():
            ratio = res['ratios'][v]
            flops = None if r['flops'] is None else r['flops'] / 1e9
            cells = [name, v, _cell(r['params'] / 1e6, ratio['params'], '.2f'),
                     _cell(flops, ratio['flops'], '.2f')]
            cells += [_cell(r.get(k), ratio.get(k), '.0f' if (r.get(k) or 0) >= 10 else '.1f')
                      for k in keys]
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
        lines += _runtime_table(res)
    if report.get('block'):
        lines += ['| PSA block (N x C x H x W) | variant | fwd (ms) | paper_direct / this | '
                  'fwd+bwd (ms) | paper_direct / this |', '|---|---|---|---|---|---|']
        for row in report['block']:
            shape = 'x'.join(map(str, row['shape']))
            for v in BLOCK_VARIANTS:
                cells = [shape, v]
                for kind in ('fwd', 'train'):
                    ms = row[f'{kind}_ms']
                    cells += [f'{ms[v]:.2f}', f'{ms["paper_direct"] / ms[v]:.2f}x']
                lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def run(settings: Settings) -> dict:
    """Run the benchmark; returns the JSON-able report. Raises :class:`UserError` for a
    device/clock combination that cannot be timed (:func:`check_clock`)."""
    check_clock(settings.device, settings.clock)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    report = dict(
        settings=asdict(settings),
        environment=dict(torch=torch.__version__, device=settings.device,
                         threads=torch.get_num_threads(), cpu=platform.processor() or
                         platform.machine(), python=platform.python_version(),
                         cuda=torch.cuda.get_device_name() if settings.device.startswith('cuda')
                         else None),
        memory_method=('torch.cuda.max_memory_allocated' if settings.device.startswith('cuda')
                       else 'torch.profiler allocation events: peak bytes allocated during the '
                       'step plus bytes held before it'),
        models=[], block=[])
    if settings.models:
        report['models'] = [benchmark_config(c, settings) for c in settings.configs]
    if settings.block:
        report['block'] = benchmark_block(settings)
    return report
