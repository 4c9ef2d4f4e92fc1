"""The model zoo pages: what the configs measure, and the pages generated from it.

``configs/results.json`` is the one results file: per config, the parameter count and GFLOPs
measured by :func:`psa_pose.config.measure` and, once trained, the COCO metrics, checkpoint and
log. ``configs/README.md`` (between the ``<!-- model-zoo -->`` markers) and
``configs/metafile.yml`` (mmpose's model-index format) are rendered from it and from
:mod:`psa_pose.evaluation.published`, so they cannot disagree. ``scripts/update_model_zoo.py``
re-measures and re-renders.
"""
import os
from typing import Dict, List, Optional

from .config import CONFIG_DIR, REPO_ROOT, FAMILIES, config_files, family_of, load_config, measure, parse_name
from .evaluation.metrics import REPORTED
from .evaluation.published import MMPOSE_AP, PAPER, paper_row
from .utils import atomic_path, read_json, write_json

RESULTS_FILE = os.path.join(CONFIG_DIR, 'results.json')
ZOO_README = os.path.join(CONFIG_DIR, 'README.md')
METAFILE = os.path.join(CONFIG_DIR, 'metafile.yml')
MARK_BEGIN, MARK_END = '<!-- model-zoo:begin -->', '<!-- model-zoo:end -->'
ARCH_NAMES = {
    'res50': 'ResNet-50', 'res101': 'ResNet-101', 'res152': 'ResNet-152',
    'hrnet-w32': 'HRNet-W32', 'hrnet-w48': 'HRNet-W48', 'resnetv1d50': 'ResNetV1d-50',
    'resnext50': 'ResNeXt-50', 'rtmpose-t': 'RTMPose-t', 'rtmpose-s': 'RTMPose-s',
    'rtmpose-m': 'RTMPose-m'
}


def measure_all(progress: bool = True) -> Dict[str, Dict]:
    """Measure every config; ``{name: {'params': int, 'gflops': float}}``."""
    out = {}
    files = config_files()
    for i, (name, path) in enumerate(files.items(), 1):
        params, gflops = measure(load_config(path))
        out[name] = {'params': params, 'gflops': gflops}
        if progress:
            print(f'[{i}/{len(files)}] {name}: {params / 1e6:.2f}M params, {gflops:.2f} GFLOPs',
                  flush=True)
    return out


def read_results(path: Optional[str] = None) -> Dict[str, Dict]:
    """The results file (``configs/results.json`` unless ``path``)."""
    return read_json(path or RESULTS_FILE, 'the model-zoo results (configs/results.json)')


def write_results(results: Dict[str, Dict], path: Optional[str] = None) -> None:
    """Write the results file atomically (keys sorted, so diffs stay small)."""
    write_json(results, path or RESULTS_FILE, sort_keys=True)


# -- rendering --------------------------------------------------------------------------------
def _fmt_ap(value: Optional[float]) -> str:
    return '' if value is None else f'{value:.3f}'


def render_tables(results: Dict[str, Dict]) -> str:
    """The model-zoo tables (Markdown), one per family."""
    files = config_files()
    lines = []
    for family, title in FAMILIES.items():
        lines += [f'### {title}', '',
                  '| Config | Arch | Input | PSA | #Params | GFLOPs | mmpose baseline AP '
                  '| Paper AP | Ours AP | ckpt | log |',
                  '|---|---|---|---|---|---|---|---|---|---|---|']
        for name, path in files.items():
            if family_of(path) != family:
                continue
            info, res = parse_name(name), results[name]
            trained = res.get('trained') or {}
            paper = paper_row(name)
            paper_ap = f"{paper.metrics['AP']:.3f} ({paper.table})" if paper else ''
            arch = ARCH_NAMES[info.arch] + (' UDP' if info.codec == 'udp' else '')
            ckpt = f"[ckpt]({trained['checkpoint']})" if trained.get('checkpoint') else ''
            log = f"[log]({trained['log']})" if trained.get('log') else ''
            lines.append(
                f'| [{name}]({family}/{name}.py) | {arch} | {info.input_hw[0]}x'
                f'{info.input_hw[1]} | {info.psa_label} | {res["params"] / 1e6:.2f}M | '
                f'{res["gflops"]:.2f} | {_fmt_ap(MMPOSE_AP.get(info.baseline))} | {paper_ap} | '
                f'{_fmt_ap(trained.get("AP"))} | {ckpt} | {log} |')
        lines.append('')
    return '\n'.join(lines)


def render_readme(results: Dict[str, Dict], current: str) -> str:
    """``current`` README text with the part between the markers replaced by the tables."""
    head, _, rest = current.partition(MARK_BEGIN)
    _, _, tail = rest.partition(MARK_END)
    return f'{head}{MARK_BEGIN}\n\n{render_tables(results)}\n{MARK_END}{tail}'


def render_metafile(results: Dict[str, Dict]) -> str:
    """``configs/metafile.yml`` in mmpose's model-index format."""
    import yaml
    models = []
    for name, path in config_files().items():
        info, res = parse_name(name), results[name]
        arch = [ARCH_NAMES[info.arch]] + (['UDP'] if info.codec == 'udp' else []) + \
            (['PSA'] if info.psa else [])
        entry = {
            'Name': name,
            'Config': os.path.relpath(path, REPO_ROOT),
            'In Collection': 'PSA' if info.psa else 'Baselines',
            'Metadata': {
                'Architecture': arch,
                'Training Data': 'COCO',
                'Input Size': f'{info.input_hw[0]}x{info.input_hw[1]}',
                'Parameters': res['params'],
                'FLOPs': res['gflops'],
            },
        }
        trained = res.get('trained')
        if trained:
            entry['Results'] = [{
                'Dataset': 'COCO',
                'Task': 'Body 2D Keypoint',
                'Metrics': {k: trained[k] for k in REPORTED if k in trained},
            }]
            if trained.get('checkpoint'):
                entry['Weights'] = trained['checkpoint']
            if trained.get('onnx'):
                entry['ONNX'] = {'Weights': trained['onnx']['file'],
                                 'SHA256': trained['onnx']['sha256']}
        models.append(entry)
    doc = {
        'Collections': [{
            'Name': 'PSA',
            'Paper': {'Title': PAPER, 'URL': 'https://arxiv.org/abs/2107.00782'},
            'README': 'configs/README.md',
        }, {
            'Name': 'Baselines',
            'Paper': {'Title': 'mmpose 1.3.2 configs, unchanged',
                      'URL': 'https://github.com/open-mmlab/mmpose'},
            'README': 'configs/README.md',
        }],
        'Models': models,
    }
    return '# Generated by scripts/update_model_zoo.py from configs/results.json: do not edit.\n' \
        + yaml.safe_dump(doc, sort_keys=False, width=100)


def write_pages(results: Dict[str, Dict]) -> None:
    """Re-render ``configs/README.md``'s tables and ``configs/metafile.yml``."""
    with open(ZOO_README) as f:
        current = f.read()
    for path, text in ((ZOO_README, render_readme(results, current)),
                       (METAFILE, render_metafile(results))):
        with atomic_path(path) as tmp, open(tmp, 'w') as f:
            f.write(text)


def add_trained(config: str, metrics: Dict[str, float], checkpoint: str,
                log: Optional[str] = None, onnx: Optional[Dict[str, str]] = None) -> None:
    """Record a trained model of ``config`` (and its ONNX export, ``{file, sha256}``) in the
    results file and re-render the pages."""
    results = read_results()
    results[config]['trained'] = {
        **{k: round(float(metrics[k]), 4) for k in REPORTED if k in metrics},
        'checkpoint': checkpoint, **({'log': log} if log else {}),
        **({'onnx': onnx} if onnx else {})}
    write_results(results)
    write_pages(results)


def stale_pages(results: Dict[str, Dict]) -> List[str]:
    """The generated pages whose text differs from what ``results`` renders."""
    with open(ZOO_README) as f:
        current = f.read()
    with open(METAFILE) as f:
        meta = f.read()
    stale = []
    if render_readme(results, current) != current:
        stale.append(ZOO_README)
    if render_metafile(results) != meta:
        stale.append(METAFILE)
    return stale
