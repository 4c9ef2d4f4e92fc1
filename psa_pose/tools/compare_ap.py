"""Compare PSA runs with their baselines: a Markdown table, CSV, JSON and a bar chart.

An input is an experiment folder (a ``--work-dir`` of train/test), a metrics JSON written by
``test.py --out``, or an mmengine JSON log (``vis_data/scalars.json``). Each PSA run is paired
with the run of its baseline config (the config name without its ``-psa-...`` tag), and with the
paper's numbers for that row where the paper has one.
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from .. import zoo
from ..metrics import REPORTED as METRICS
from ..metrics import normalize_metrics
from ..published import paper_row
from ..utils import UserError, atomic_path, one_line_errors, read_json, write_json


def _metrics_from(d: dict) -> Dict[str, float]:
    return {k: v for k, v in normalize_metrics(d).items() if k in METRICS}


def _from_scalars(path: str) -> Dict[str, float]:
    """The last evaluation in an mmengine JSON-lines log."""
    last = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f'{path}: line {n} is not JSON; expected an mmengine '
                                f'scalars.json log') from None
            if any(k.startswith('coco/') for k in record):
                last = _metrics_from(record)
    return last


def load_run(path: str) -> dict:
    """One run: ``{'config', 'source', 'metrics', 'config_file'}``."""
    if not osp.exists(path):
        raise UserError(f'{path}: no such file or folder')
    # a work dir holds the config mmengine dumped; it names the run when the metrics do not
    folder = path if osp.isdir(path) else osp.dirname(path)
    dumped = sorted(glob.glob(osp.join(folder, '*.py')))
    config_file = dumped[0] if dumped else None
    if osp.isdir(path):
        metrics_json = osp.join(path, 'metrics.json')
        logs = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
        if osp.isfile(metrics_json):
            source = metrics_json
        elif logs:
            source = logs[-1]
        else:
            raise UserError(f'{path}: no metrics.json and no mmengine log with COCO metrics; '
                            f'run scripts/test.py CONFIG CKPT --out {path}/metrics.json')
    else:
        source = path
    if source.endswith('scalars.json'):
        metrics = _from_scalars(source)
        config = osp.splitext(osp.basename(config_file))[0] if config_file else None
    else:
        data = read_json(source, 'metrics from test.py --out')
        if not isinstance(data, dict):
            raise UserError(f'{source}: expected a JSON object of metrics from test.py --out')
        metrics, config = _metrics_from(data), data.get('config')
        if config is None and config_file:
            config = osp.splitext(osp.basename(config_file))[0]
    if 'AP' not in metrics:
        raise UserError(f'{source}: no COCO AP in it (expected keys like "coco/AP")')
    if not config:
        raise UserError(f'{source}: cannot tell which config it is (no "config" key and no '
                        f'config file beside it)')
    try:
        zoo.parse_name(config)
    except ValueError as e:
        raise UserError(f'{source}: config {e}') from None
    return {'config': config, 'source': source, 'metrics': metrics, 'config_file': config_file}


def _cost(run: dict, results: Dict[str, dict]) -> Dict[str, Optional[float]]:
    if run['config'] in results:
        r = results[run['config']]
        return {'params': r['params'], 'gflops': r['gflops']}
    if run['config_file']:
        params, gflops = zoo.measure(zoo.load_config(run['config_file']))
        return {'params': params, 'gflops': gflops}
    return {'params': None, 'gflops': None}


def compare(runs: List[dict]) -> List[dict]:
    """Rows: each baseline followed by its PSA runs, with deltas and the paper's numbers."""
    results = zoo.read_results() if osp.exists(zoo.RESULTS_FILE) else {}
    by_config = {r['config']: r for r in runs}
    order = []
    for run in runs:
        info = zoo.parse_name(run['config'])
        base = info.baseline
        if base not in order:
            order.append(base)
    rows = []
    for base in order:
        group = [by_config[base]] if base in by_config else []
        group += [r for r in runs if r['config'] != base and zoo.parse_name(r['config']).baseline
                  == base]
        base_ap = by_config[base]['metrics']['AP'] if base in by_config else None
        base_paper = paper_row(base)
        for run in group:
            info = zoo.parse_name(run['config'])
            paper = paper_row(run['config'])
            row = {
                'config': run['config'], 'baseline': base, 'psa': info.psa_label,
                'input': f'{info.input_hw[0]}x{info.input_hw[1]}', **_cost(run, results),
                **{k: run['metrics'].get(k) for k in METRICS},
                'delta_AP': None, 'paper_AP': paper.metrics['AP'] if paper else None,
                'paper_delta_AP': None, 'source': run['source'],
            }
            if info.psa and base_ap is not None:
                row['delta_AP'] = run['metrics']['AP'] - base_ap
            if info.psa and paper and base_paper:
                row['paper_delta_AP'] = paper.metrics['AP'] - base_paper.metrics['AP']
            rows.append(row)
    return rows


def _f(value, fmt: str) -> str:
    return '' if value is None else format(value, fmt)


def markdown(rows: List[dict]) -> str:
    head = ('| model | PSA | input | #params | GFLOPs | AP | AP50 | AP75 | APM | APL | AR | '
            'ΔAP | paper AP | paper ΔAP |')
    lines = [head, '|' + '---|' * 14]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['psa']} | {r['input']} | "
            f"{_f(r['params'] and r['params'] / 1e6, '.2f')}{'M' if r['params'] else ''} | "
            f"{_f(r['gflops'], '.2f')} | "
            + ' | '.join(_f(r[k], '.3f') for k in METRICS)
            + f" | {_f(r['delta_AP'], '+.3f')} | {_f(r['paper_AP'], '.3f')} | "
            f"{_f(r['paper_delta_AP'], '+.3f')} |")
    return '\n'.join(lines)


def plot(rows: List[dict], path: str) -> None:
    """Grouped bars: AP of each baseline and its PSA runs; the paper's ΔAP written above."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups: Dict[str, List[dict]] = {}
    for r in rows:
        groups.setdefault(r['baseline'], []).append(r)
    width = 0.8 / max(len(g) for g in groups.values())
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(groups)), 4.5))
    colors = {'-': '#8c8c8c'}
    palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd']
    for gi, (base, group) in enumerate(groups.items()):
        for ri, r in enumerate(group):
            color = colors.setdefault(r['psa'], palette[(len(colors) - 1) % len(palette)])
            x = gi + (ri - (len(group) - 1) / 2) * width
            ax.bar(x, r['AP'], width * 0.95, color=color,
                   label=('baseline' if r['psa'] == '-' else f"PSA {r['psa']}"))
            text = f"{r['AP']:.3f}"
            if r['delta_AP'] is not None:
                text += f"\n{r['delta_AP']:+.3f}"
            if r['paper_delta_AP'] is not None:
                text += f"\npaper {r['paper_delta_AP']:+.3f}"
            ax.text(x, r['AP'], text, ha='center', va='bottom', fontsize=7)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc='lower right')
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([b.split('_')[1] + '\n' + b.rsplit('-', 1)[-1] for b in groups],
                       fontsize=8)
    ax.set_ylabel('COCO AP')
    top = max(r['AP'] for r in rows)
    ax.set_ylim(0, min(1.0, top * 1.3 + 0.05))
    ax.set_title('PSA vs baseline (ΔAP to the baseline; paper ΔAP where the paper has the row)',
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=120)
    plt.close(fig)


def write_outputs(rows: List[dict], out_dir: str) -> Dict[str, str]:
    """compare.md, compare.csv, compare.json and compare.png in ``out_dir``."""
    paths = {ext: osp.join(out_dir, f'compare.{ext}') for ext in ('md', 'csv', 'json', 'png')}
    with atomic_path(paths['md']) as tmp, open(tmp, 'w') as f:
        f.write(markdown(rows) + '\n')
    with atomic_path(paths['csv']) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_json(rows, paths['json'])
    plot(rows, paths['png'])
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', help='experiment folders, metrics JSONs or '
                        'mmengine scalars.json logs')
    parser.add_argument('--out-dir', help='write compare.{md,csv,json,png} here')
    args = parser.parse_args(argv)
    with one_line_errors():
        rows = compare([load_run(p) for p in args.runs])
        print(markdown(rows))
        if args.out_dir:
            for path in write_outputs(rows, args.out_dir).values():
                print(f'wrote {path}')
    return 0
