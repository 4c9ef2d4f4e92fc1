"""Compare PSA runs with their baselines: ΔAP with a 95% interval and a verdict, as a Markdown
table, CSV, JSON and a plot.

Inputs, either
  * runs: experiment folders (a ``--work-dir`` of train/test; a folder of ``seed-<k>/`` runs
    counts as one model with several seeds), metrics JSONs written by ``test.py --out`` or
    mmengine JSON logs (``vis_data/scalars.json``). Each PSA run is paired with the run of its
    baseline config (the config name without its ``-psa-...`` tag), and with the paper's numbers
    for that row where the paper has one. An experiment folder finds its COCO results file and
    ground truth itself (``test.py`` records them in ``metrics.json``); or
  * ``--gt ANN.json --results BASELINE.json OTHER.json ...``: COCO results files directly, the
    first is the baseline.

With COCO results and their ground truth, the metrics are pycocotools' on the full set and the
intervals come from a paired bootstrap over the images (``psa_pose.evaluation.bootstrap``); verdict
``better`` / ``worse``: the 95% interval of ΔAP lies above / below 0, else ``no detectable
difference``.
"""
import copy
import csv
import glob
import json
import math
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

from .. import zoo
from ..config import evaluators, load_config, measure, parse_name
from .metrics import REPORTED as METRICS
from .metrics import normalize_metrics
from .published import paper_row
from ..utils import (UserError, atomic_path, check_outputs, one_line_errors, read_json,
                     write_json)
from .run_record import recorded_file
from . import bootstrap as bs

_SEED_DIR = re.compile(r'^seed-(\d+)$')


def _finite(data: dict, source: str) -> None:
    """Refuse a NaN or infinite metric: it would poison every mean and interval."""
    for key, value in data.items():
        name = normalize_metrics({key: value})
        if name and not math.isfinite(next(iter(name.values()))):
            raise UserError(f'{source}: {key} is {value}; the run diverged or its evaluation '
                            f'failed; re-test it (scripts/test.py CONFIG CKPT --out ...) or '
                            f'leave it out')


def _metrics_from(d: dict, source: str) -> Dict[str, float]:
    _finite(d, source)
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
                last = _metrics_from(record, f'{path} line {n}')
    return last


def _is_run_folder(path: str) -> bool:
    return osp.isfile(osp.join(path, 'metrics.json')) or bool(
        glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))


def _seed_dirs(path: str) -> List[Tuple[int, str]]:
    found = []
    for name in os.listdir(path):
        m = _SEED_DIR.match(name)
        if m and osp.isdir(osp.join(path, name)):
            found.append((int(m[1]), osp.join(path, name)))
    return sorted(found)


def _gt_from_config(config_file: Optional[str]) -> Optional[str]:
    """The test ground truth a dumped config names, for metrics.json files of older test.py."""
    if not config_file:
        return None
    try:
        cfg = load_config(config_file)
    except UserError:
        return None
    found = evaluators(cfg)
    ann = found[0].get('ann_file') if found else None
    return ann if ann and osp.isfile(ann) else None


def load_run(path: str, seed: Optional[int] = None) -> dict:
    """One run: ``{'config', 'source', 'metrics', 'config_file', 'results', 'gt', 'seed',
    'partial'}``; ``results`` / ``gt`` (its COCO results file and ground truth) are None where
    unknown; an experiment folder's are the files its ``metrics.json`` records
    (:mod:`psa_pose.evaluation.run_record`), read only inside the folder; ``partial``: test.py
    made the results on detected boxes, which may leave images out."""
    if not osp.exists(path):
        raise UserError(f'{path}: no such file or folder')
    # a work dir holds the config mmengine dumped; it names the run when the metrics do not
    folder = path if osp.isdir(path) else osp.dirname(path)
    dumped = sorted(glob.glob(osp.join(folder, '*.py')))
    config_file = dumped[0] if dumped else None
    results = gt = None
    partial = False
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
        metrics, config = _metrics_from(data, source), data.get('config')
        if config is None and config_file:
            config = osp.splitext(osp.basename(config_file))[0]
        if seed is None and isinstance(data.get('seed'), int):
            seed = data['seed']
        if osp.isdir(path):
            # only the folder's own files, checked against their recorded sha256
            results = recorded_file(data, 'coco_results', path, source, within=True)
            if results is None and 'coco_results' not in data:
                beside = osp.join(path, 'results.json')     # a hand-made folder
                results = beside if osp.isfile(beside) else None
            gt = recorded_file(data, 'ann_file', path, source, within=False) or \
                _gt_from_config(config_file)
            partial = bool(data.get('partial_results'))
        else:
            results = None          # a bare metrics JSON: its numbers, no interval
    if 'AP' not in metrics:
        raise UserError(f'{source}: no COCO AP in it (expected keys like "coco/AP")')
    if not config:
        raise UserError(f'{source}: cannot tell which config it is (no "config" key and no '
                        f'config file beside it)')
    try:
        parse_name(config)
    except ValueError as e:
        raise UserError(f'{source}: config {e}') from None
    return {'config': config, 'source': source, 'metrics': metrics, 'config_file': config_file,
            'results': results if gt else None, 'gt': gt if results else None, 'seed': seed,
            'partial': partial}


def load_runs(path: str) -> List[dict]:
    """The runs of one input: a run, or a folder of ``seed-<k>/`` runs (one per seed)."""
    if osp.isdir(path) and not _is_run_folder(path):
        seeds = _seed_dirs(path)
        if seeds:
            # a seed still training (no metrics.json yet) is left out until it is tested
            done = [(k, p) for k, p in seeds if osp.isfile(osp.join(p, 'metrics.json'))]
            return [load_run(p, seed=k) for k, p in done] or [load_run(seeds[0][1])]
        roles = sorted(d for d in os.listdir(path) if osp.isdir(osp.join(path, d)) and (
            _is_run_folder(osp.join(path, d)) or _seed_dirs(osp.join(path, d))))
        if roles:
            runs = ' '.join(osp.join(path, d) for d in roles)
            raise UserError(f'{path}: an experiment folder holding the runs {", ".join(roles)}, '
                            f'not one run; pass the runs: python scripts/compare_ap.py {runs} '
                            f'--out-dir {path}')
    m = _SEED_DIR.match(osp.basename(osp.normpath(path)))
    return [load_run(path, seed=int(m[1]) if m else None)]


def check_pair(baseline_file: str, psa_file: str) -> None:
    """What the comparison will need of two configs' names, checked before anything is trained:
    both follow the naming rule, and the second is a PSA variant whose baseline is the first
    (compare_ap.py pairs runs by these names). One-line :class:`UserError` otherwise."""
    names = {}
    for role, path in (('baseline', baseline_file), ('PSA', psa_file)):
        name = osp.splitext(osp.basename(path))[0]
        try:
            names[role] = parse_name(name)
        except ValueError as e:
            raise UserError(f'{path}: the {role} config {e}; compare_ap.py pairs the runs by '
                            f'their config names: rename the file (nothing was trained)') from None
    base, psa = names['baseline'], names['PSA']
    if base.psa:
        raise UserError(f'{baseline_file}: the baseline config has a PSA tag (-psa-{base.psa}); '
                        f'pass the baseline first, then its PSA variant (nothing was trained)')
    if not psa.psa or psa.baseline != base.name:
        raise UserError(f'{psa_file}: not a PSA variant of {base.name} (its baseline by name is '
                        f'{psa.baseline}); pass a baseline and its own PSA variant (nothing was '
                        f'trained)')


def check_pair_main(argv: List[str]) -> int:
    """``python -c`` entry of scripts/compare_train.sh: exit 0, or one line and exit 2."""
    with one_line_errors():
        check_pair(*argv)
    return 0


def runs_from_results(gt: str, results: List[str], partial: bool = False) -> List[dict]:
    """``--gt/--results`` inputs as runs; names from the file names."""
    if len(results) < 2:
        raise UserError('--results needs at least two COCO results files, the baseline first')
    names = [osp.splitext(osp.basename(p))[0] for p in results]
    if len(set(names)) < len(names):
        names = [osp.join(osp.basename(osp.dirname(osp.abspath(p))), n)
                 for p, n in zip(results, names)]
    if len(set(names)) < len(names):
        names = [f'{n} ({i + 1})' for i, n in enumerate(names)]
    return [{'config': n, 'source': p, 'metrics': None, 'config_file': None, 'results': p,
             'gt': gt, 'seed': None, 'partial': partial} for n, p in zip(names, results)]


def _cost(run: dict, results: Dict[str, dict]) -> Dict[str, Optional[float]]:
    if run['config'] in results:
        r = results[run['config']]
        return {'params': r['params'], 'gflops': r['gflops']}
    if run['config_file']:
        params, gflops = measure(load_config(run['config_file']))
        return {'params': params, 'gflops': gflops}
    return {'params': None, 'gflops': None}


def _same_file(a: str, b: str) -> bool:
    if osp.realpath(a) == osp.realpath(b):
        return True
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        return fa.read() == fb.read()


def _groups(runs: List[dict], by_name: bool) -> List[Tuple[str, List[Tuple[str, List[dict]]]]]:
    """``[(baseline, [(config, runs of its seeds), ...])]``, each baseline first in its group."""
    models: Dict[str, List[dict]] = {}
    for run in runs:
        models.setdefault(run['config'], []).append(run)
    for config, seeds in models.items():
        keys = [r['seed'] for r in seeds]
        if None in keys or len(set(keys)) < len(keys):    # unnamed seeds: paired by position
            for i, r in enumerate(seeds):
                r['seed'] = i
        seeds.sort(key=lambda r: r['seed'])
    if not by_name:
        names = list(models)
        return [(names[0], [(n, models[n]) for n in names])]
    groups: Dict[str, List[str]] = {}
    for config in models:
        groups.setdefault(parse_name(config).baseline, []).append(config)
    out = []
    for base, configs in groups.items():
        if base not in models:
            psa = models[configs[0]][0]
            run_dir = osp.dirname(osp.abspath(psa['source']))
            while _SEED_DIR.match(osp.basename(run_dir)):
                run_dir = osp.dirname(run_dir)
            guess = osp.join(osp.dirname(run_dir), 'baseline')
            target = run_dir if osp.basename(psa['source']) == 'metrics.json' else psa['source']
            hint = guess if osp.isdir(guess) else f'<run of {base}>'
            raise UserError(f'{psa["source"]}: a PSA run of {psa["config"]}, but no run of its '
                            f'baseline {base} is among the inputs; compare it with its '
                            f'baseline: python scripts/compare_ap.py {hint} {target}')
        out.append((base, [(base, models[base])] + [(c, models[c]) for c in configs
                                                    if c != base]))
    return out


def _evaluate(seeds: List[dict], cache: Dict[str, bs.ImageEval], gt_cache: dict) -> None:
    from .coco import read_gt, run_cocoeval
    for r in seeds:
        if r['results'] in cache:
            continue
        if r['gt'] not in gt_cache:
            gt_cache[r['gt']] = read_gt(r['gt'])
        # COCOeval writes 'ignore' into the annotations: each evaluation gets its own copy
        gt = copy.deepcopy(gt_cache[r['gt']])
        cache[r['results']] = bs.image_eval(run_cocoeval(r['gt'], r['results'], gt=gt,
                                                         partial=r.get('partial', False)))


def compare(runs: List[dict], resamples: int = 1000, seed: int = 0,
            by_name: bool = True, progress: bool = False) -> List[dict]:
    """Rows: each baseline followed by its PSA runs, with ΔAP, intervals, verdicts and the
    paper's numbers; several runs of one config are seeds (mean, std, pooled interval)."""
    zoo_results = zoo.read_results() if by_name and osp.exists(zoo.RESULTS_FILE) else {}
    rows = []
    evals: Dict[str, bs.ImageEval] = {}
    gts: dict = {}
    for base, models in _groups(runs, by_name):
        everyone = [r for _, seeds in models for r in seeds]
        scored = all(r['results'] for r in everyone)
        boot = scored and resamples > 0
        if scored:
            first = everyone[0]
            for r in everyone[1:]:
                if not _same_file(r['gt'], first['gt']):
                    raise UserError(f'{r["results"]}: scored on the ground truth {r["gt"]}, but '
                                    f'{first["results"]} on {first["gt"]}; compare results of '
                                    f'one ground truth')
            if progress:
                print(f'evaluating {len(everyone)} results files with pycocotools ...',
                      flush=True)
            _evaluate(everyone, evals, gts)
            for r in everyone:
                r['metrics'] = {m: evals[r['results']].stats[m] for m in METRICS}
        if boot:
            ids = evals[first['results']].image_ids
            counts = bs.resample_counts(len(ids), resamples, seed)
            if progress:
                print(f'paired bootstrap: {resamples} resamples of the {len(ids)} images ...',
                      flush=True)
            acc = {r['results']: bs.accumulate(evals[r['results']], counts) for r in everyone}
        base_seeds = models[0][1]
        base_paper = paper_row(base) if by_name else None
        for ri, (config, seeds) in enumerate(models):
            is_base = ri == 0
            info = parse_name(config) if by_name else None
            paper = paper_row(config) if by_name else None
            mean_std = {m: bs.seed_stats([r['metrics'][m] for r in seeds])
                        if all(m in r['metrics'] for r in seeds) else (None, None)
                        for m in METRICS}
            row = {
                'config': config, 'baseline': base,
                'psa': info.psa_label if info else ('-' if is_base else 'vs baseline'),
                'input': f'{info.input_hw[0]}x{info.input_hw[1]}' if info else None,
                **(_cost(seeds[0], zoo_results) if by_name else
                   {'params': None, 'gflops': None}),
                'seeds': [r['seed'] for r in seeds],
                **{m: mean_std[m][0] for m in METRICS}, 'AP_std': mean_std['AP'][1],
                'AP_ci': None, 'ci': None,
                'delta_AP': None, 'delta_AP_std': None, 'delta_AP_ci': None, 'verdict': None,
                'delta': None, 'delta_ci': None, 'verdicts': None,
                'paper_AP': paper.metrics['AP'] if paper else None, 'paper_delta_AP': None,
                'bootstrap': ({'resamples': resamples, 'seed': seed, 'images': len(ids),
                               'level': bs.LEVEL} if boot else None),
                'source': [r['source'] for r in seeds] if len(seeds) > 1 else seeds[0]['source'],
            }
            if boot:
                pooled = bs.pool_seeds([acc[r['results']] for r in seeds], seed)
                row['ci'] = {m: bs.interval(pooled[m]) for m in METRICS}
                row['AP_ci'] = row['ci']['AP']
            if not is_base:
                _delta(row, seeds, base_seeds, acc if boot else None, seed)
            if not is_base and paper and base_paper:
                row['paper_delta_AP'] = paper.metrics['AP'] - base_paper.metrics['AP']
            rows.append(row)
    return rows


def _delta(row: dict, seeds: List[dict], base_seeds: List[dict], acc: Optional[dict],
           seed: int) -> None:
    """ΔAP over the seeds both models have, paired by seed; with ``acc`` its interval."""
    base_by_seed = {r['seed']: r for r in base_seeds}
    pairs = [(base_by_seed[r['seed']], r) for r in seeds if r['seed'] in base_by_seed]
    if not pairs:
        raise UserError(f'{seeds[0]["source"]}: seeds {[r["seed"] for r in seeds]}, its baseline '
                        f'{row["baseline"]} has seeds {sorted(base_by_seed)}: no pair; train '
                        f'both with the same seeds (compare_train.sh --seeds)')
    stats = {m: bs.seed_stats([p['metrics'][m] - b['metrics'][m] for b, p in pairs])
             if all(m in p['metrics'] and m in b['metrics'] for b, p in pairs) else (None, None)
             for m in METRICS}
    row['delta'] = {m: stats[m][0] for m in METRICS}
    row['delta_AP'], row['delta_AP_std'] = stats['AP']
    if acc is not None:
        base = bs.pool_seeds([acc[b['results']] for b, _ in pairs], seed)
        other = bs.pool_seeds([acc[p['results']] for _, p in pairs], seed)
        boot = bs.Bootstrap([base, other], 0, 0, seed)
        pair = bs.summarize_pair(boot, 0, 1, row['delta'])
        row['delta_ci'], row['verdicts'] = pair['delta_ci'], pair['verdicts']
        row['delta_AP_ci'], row['verdict'] = pair['delta_ci']['AP'], pair['verdicts']['AP']


def _f(value, fmt: str) -> str:
    return '' if value is None else format(value, fmt)


def _ci(ci, fmt: str = '.3f') -> str:
    return '' if ci is None else f'[{format(ci[0], fmt)}, {format(ci[1], fmt)}]'


def _pm(value, std, fmt: str) -> str:
    return _f(value, fmt) + ('' if std is None else f' ± {std:.3f}')


def markdown(rows: List[dict]) -> str:
    head = ('| model | PSA | input | #params | GFLOPs | seeds | AP | AP 95% CI | AP50 | AP75 | '
            'APM | APL | AR | ΔAP | ΔAP 95% CI | verdict | paper AP | paper ΔAP |')
    lines = [head, '|' + '---|' * 18]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['psa']} | {r['input'] or ''} | "
            f"{_f(r['params'] and r['params'] / 1e6, '.2f')}{'M' if r['params'] else ''} | "
            f"{_f(r['gflops'], '.2f')} | {len(r['seeds'])} | {_pm(r['AP'], r['AP_std'], '.3f')} | "
            f"{_ci(r['AP_ci'])} | "
            + ' | '.join(_f(r[k], '.3f') for k in METRICS[1:])
            + f" | {_pm(r['delta_AP'], r['delta_AP_std'], '+.3f')} | "
            f"{_ci(r['delta_AP_ci'], '+.3f')} | {r['verdict'] or ''} | "
            f"{_f(r['paper_AP'], '.3f')} | {_f(r['paper_delta_AP'], '+.3f')} |")
    return '\n'.join(lines)


def explain(rows: List[dict]) -> str:
    """What the intervals and the verdict mean, for below the table."""
    boot = next((r['bootstrap'] for r in rows if r['bootstrap']), None)
    seeds = max(len(r['seeds']) for r in rows)
    if not boot:
        return ('No intervals: the inputs have no COCO results file with its ground truth '
                '(pass experiment folders or --gt/--results); ΔAP alone cannot tell a gain '
                'from noise.')
    text = (f"95% intervals: paired bootstrap over the {boot['images']} images "
            f"({boot['resamples']} resamples, --bootstrap-seed {boot['seed']}; both models on "
            f"the same resamples")
    text += '; seeds resampled too).' if seeds > 1 else ').'
    return text + (' Verdict: better / worse when the interval of ΔAP lies above / below 0; '
                   '"no detectable difference" when it contains 0: on these images the '
                   'difference cannot be told from the luck of which images were drawn.'
                   + (' ± is the standard deviation over seeds.' if seeds > 1 else ''))


def _flat(row: dict) -> dict:
    """A row as CSV columns: intervals as ``*_low`` / ``*_high``, per-metric dicts spread out
    (``AP50_ci_low``, ``delta_AP50``, ``verdict_AP50``, ...)."""
    out = {}
    for key, value in row.items():
        if key in ('ci', 'delta_ci', 'delta', 'verdicts', 'bootstrap'):
            for m, v in (value or {}).items():
                name = {'ci': f'{m}_ci', 'delta_ci': f'delta_{m}_ci', 'delta': f'delta_{m}',
                        'verdicts': f'verdict_{m}', 'bootstrap': f'bootstrap_{m}'}[key]
                out.update(_flat({name: v}))
        elif key.endswith('_ci'):
            out[f'{key}_low'], out[f'{key}_high'] = value if value else (None, None)
        elif isinstance(value, list):
            out[key] = ' '.join(map(str, value))
        else:
            out[key] = value
    return out


def plot(rows: List[dict], path: str) -> None:
    """Left: AP of each baseline and its PSA runs with 95% intervals. Right: ΔAP of each PSA
    run with its interval, and the paper's ΔAP where the paper has the row."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups: Dict[str, List[dict]] = {}
    for r in rows:
        groups.setdefault(r['baseline'], []).append(r)
    width = 0.8 / max(len(g) for g in groups.values())
    others = [r for r in rows if r['config'] != r['baseline']]
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(max(9, 2.2 * len(groups) + 5), 4.5),
                                 gridspec_kw={'width_ratios': [max(2, len(groups)), 2]})
    colors = {'-': '#8c8c8c'}
    palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf']
    for gi, group in enumerate(groups.values()):
        for ri, r in enumerate(group):
            color = colors.setdefault(r['psa'], palette[(len(colors) - 1) % len(palette)])
            x = gi + (ri - (len(group) - 1) / 2) * width
            err = None if r['AP_ci'] is None else [[r['AP'] - r['AP_ci'][0]],
                                                  [r['AP_ci'][1] - r['AP']]]
            ax.bar(x, r['AP'], width * 0.95, color=color, yerr=err, capsize=3,
                   label=('baseline' if r['psa'] == '-' else f"PSA {r['psa']}"))
            ax.text(x, r['AP'] if err is None else r['AP_ci'][1], f"{r['AP']:.3f}",
                    ha='center', va='bottom', fontsize=7)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc='lower right')
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([b.split('_')[1] + '\n' + b.rsplit('-', 1)[-1] if '_' in b else b
                        for b in groups], fontsize=8)
    ax.set_ylabel('COCO AP')
    top = max(r['AP'] if r['AP_ci'] is None else r['AP_ci'][1] for r in rows)
    ax.set_ylim(0, min(1.0, top * 1.25 + 0.05))
    ax.set_title('AP with 95% bootstrap interval', fontsize=9)
    for i, r in enumerate(others):
        color = colors.get(r['psa'], palette[0])
        err = None if r['delta_AP_ci'] is None else [[r['delta_AP'] - r['delta_AP_ci'][0]],
                                                    [r['delta_AP_ci'][1] - r['delta_AP']]]
        dx.errorbar(i, r['delta_AP'], yerr=err, fmt='o', color=color, capsize=4,
                    label='ours (95% interval)' if i == 0 else None)
        dx.annotate(f"{r['delta_AP']:+.3f}\n{r['verdict'] or ''}", (i, r['delta_AP']),
                    textcoords='offset points', xytext=(8, 0), fontsize=7, va='center')
        if r['paper_delta_AP'] is not None:
            dx.plot(i, r['paper_delta_AP'], marker='*', color='black', markersize=10,
                    linestyle='none', label='paper' if 'paper' not in
                    dx.get_legend_handles_labels()[1] else None)
    dx.axhline(0, color='#444444', linewidth=0.8)
    dx.set_xticks(range(len(others)))
    dx.set_xticklabels([f"{r['config'].split('_')[1] if '_' in r['config'] else r['config']}"
                        f"\n{r['psa']}" for r in others], fontsize=7)
    dx.set_xlim(-0.7, max(len(others), 1) - 0.3)
    dx.set_ylabel('ΔAP (PSA - baseline)')
    dx.set_title('ΔAP, paired bootstrap 95% interval; * paper', fontsize=9)
    if others:
        dx.legend(fontsize=7, loc='best')
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=120)
    plt.close(fig)


def output_paths(out_dir: str) -> Dict[str, str]:
    """compare.md, compare.csv, compare.json and compare.png in ``out_dir``, by extension."""
    return {ext: osp.join(out_dir, f'compare.{ext}') for ext in ('md', 'csv', 'json', 'png')}


def check_out_dir(out_dir: str, runs: List[dict]) -> None:
    """Refuse (one line) an ``--out-dir`` whose outputs would replace a file of the runs."""
    labels = {'source': 'input', 'results': 'COCO results', 'gt': 'ground truth',
              'config_file': 'config'}
    inputs = {}
    for r in runs:
        for key, label in labels.items():
            if r.get(key):
                inputs.setdefault(f'the {label} of {r["config"]}', r[key])
    for path in output_paths(out_dir).values():
        check_outputs({'--out-dir': path}, inputs)


def write_outputs(rows: List[dict], out_dir: str) -> Dict[str, str]:
    """compare.md, compare.csv, compare.json and compare.png in ``out_dir``."""
    paths = output_paths(out_dir)
    json.dumps(rows, allow_nan=False)          # only valid JSON: inputs were checked finite
    with atomic_path(paths['md']) as tmp, open(tmp, 'w') as f:
        f.write(markdown(rows) + '\n\n' + explain(rows) + '\n')
    flat = [_flat(r) for r in rows]
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with atomic_path(paths['csv']) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
    write_json(rows, paths['json'])
    plot(rows, paths['png'])
    return paths
