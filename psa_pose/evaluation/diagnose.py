"""Where two pose models differ: keypoint error classes, AP at strict OKS thresholds, per-joint
precision, what each error class costs, background errors; each as a paired-bootstrap
difference with an interval and a verdict (docs/diagnosis.md).

Error classes (Ronchi & Perona, ICCV 2017), over the visible ground-truth keypoints of every
detection that pycocotools matches to a person at OKS >= 0.1 (``COCOeval`` run with
``iouThrs=[0.1, ...]``, its own greedy matching, area range 'all'): keypoint k of the detection
is compared, with COCOeval's per-keypoint similarity
``ks = exp(-d^2 / (2 * area * (2 * sigma_k)^2))`` (``area``: the person it is compared with),
with the matched person, the matched person left/right-flipped and every other annotated person
of the image (as annotated and flipped). The best comparison decides (ties go to the matched
person as annotated): ``good`` matched person, ks > 0.85; ``jitter`` matched person,
0.5 <= ks <= 0.85; ``inversion`` matched person flipped, ks >= 0.5; ``swap`` another person,
ks >= 0.5; ``miss`` best ks < 0.5.

Every quantity is a sum over images of per-image numbers (or, for the APs, pycocotools'
per-image matches), computed once per model; a bootstrap resample re-accumulates them with the
image counts of :func:`psa_pose.evaluation.bootstrap.resample_counts` (the same resamples as
ΔAP for the same ``--bootstrap-seed``).
"""
import contextlib
import copy
import io
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import bootstrap as bs
from . import power as pw
from .coco import matched_instances
from ..utils import UserError, atomic_path, read_json, write_json

CLASSES = ('good', 'jitter', 'inversion', 'swap', 'miss')
MATCH_OKS = 0.1                      # a detection is matched to a person at OKS >= this
GOOD_KS, CLASS_KS = 0.85, 0.5        # ks above GOOD_KS: good; below CLASS_KS: miss
THRESHOLDS = ('0.5', '0.75', '0.85', '0.9', '0.95')      # AP_at keys
PR_THRESHOLDS = ('0.5', '0.75', '0.9')
ORACLES = ('jitter', 'inversion', 'swap', 'miss', 'score')
# one COCOeval per model: the matching threshold, then COCO's ten (as written decimals, so that
# each equals pycocotools run with that single value; linspace would give 0.8500000000000001)
_STRICT = (MATCH_OKS, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
# lower is better for these; the verdict of their difference is turned round
_DELTA_KEYS = ('errors', 'AP_at', 'ks_mean_per_keypoint', 'good_share_per_keypoint', 'oracle_AP',
               'false_positives', 'false_negatives')
_LOWER_IS_BETTER = {'jitter', 'inversion', 'swap', 'miss', 'false_positives', 'false_negatives'}


def coco_keypoints() -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
    """COCO's keypoint names and flip pairs, from mmpose's dataset metainfo."""
    from ..data.synth import FLIP_INDICES, KEYPOINT_NAMES
    return KEYPOINT_NAMES, FLIP_INDICES


class Diagnosis(NamedTuple):
    """One results file's per-image numbers (I images of the ground truth, K keypoints)."""
    image_ids: Tuple
    errors: np.ndarray          # (I, K, 5) int: class counts per image and keypoint
    ks_sum: np.ndarray          # (I, K) sum of ks against the matched person
    ks_n: np.ndarray            # (I, K) int: matched visible keypoints
    false_positives: np.ndarray  # (I,) int: detections matched to nobody at OKS 0.1
    false_negatives: np.ndarray  # (I,) int: people matched by no detection
    strict: bs.ImageEval        # pycocotools' matches at _STRICT
    oracles: Dict[str, bs.ImageEval]
    AP_at: Dict[str, float]     # pycocotools' on the full set
    AP: float                   # mean of AP over COCO's ten thresholds (_STRICT[1:])
    oracle_AP: Dict[str, float]
    pr: Dict[str, List[float]]  # precision at pycocotools' 101 recall thresholds
    keypoints: Tuple[str, ...]


def _cocoeval(gt: dict, results: List[dict], iou_thrs: Optional[Sequence[float]] = None):
    """pycocotools' COCOeval ('keypoints') of in-memory results, evaluated and accumulated
    (and summarized for COCO's own thresholds). Both inputs are copied: COCOeval writes into
    them."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), 'keypoints')
        if iou_thrs is not None:
            ev.params.iouThrs = np.array(iou_thrs, float)
        ev.evaluate()
        ev.accumulate()
        if iou_thrs is None:
            ev.summarize()
    return ev


def _ks(dt: np.ndarray, gt: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(D, G, K) COCOeval's per-keypoint term of each detection (D, K, 2+) against each person
    (G, K, 2+), in pycocotools' operation order."""
    dx = dt[:, None, :, 0] - gt[None, :, :, 0]
    dy = dt[:, None, :, 1] - gt[None, :, :, 1]
    e = (dx ** 2 + dy ** 2) / ((sigmas * 2) ** 2) / (areas[None, :, None] + np.spacing(1)) / 2
    return np.exp(-e)


def _classify(ev, flip: Sequence[int]) -> dict:
    """Per-image error classes, ks, background errors and the corrections of each class, from
    a COCOeval evaluated at ``_STRICT`` (index 0: OKS 0.1)."""
    p = ev.params
    sigmas = np.asarray(p.kpt_oks_sigmas, float)
    flip = np.asarray(flip)
    num_i, num_k = len(p.imgIds), len(sigmas)
    out = {'errors': np.zeros((num_i, num_k, len(CLASSES)), np.int64),
           'ks_sum': np.zeros((num_i, num_k)), 'ks_n': np.zeros((num_i, num_k), np.int64),
           'false_positives': np.zeros(num_i, np.int64),
           'false_negatives': np.zeros(num_i, np.int64),
           'fix': {c: [] for c in CLASSES[1:]},        # (result index, k, x, y)
           'oks': {}}                                    # result index -> best OKS
    cat = p.catIds[0]
    a_all = list(p.areaRngLbl).index('all')
    base = a_all * num_i
    for i, img in enumerate(p.imgIds):
        e = ev.evalImgs[base + i]
        gts, dts = matched_instances(ev, img, cat)
        people = [g for g in gts if not g['iscrowd']]
        if dts and people:
            G = np.array([g['keypoints'] for g in people], float).reshape(len(people), num_k, 3)
            areas = np.array([g['area'] for g in people], float)
            D = np.array([d['keypoints'] for d in dts], float).reshape(len(dts), num_k, 3)
            ks = _ks(D, G, areas, sigmas)                       # (D, G, K)
            ks_flip = _ks(D, G[:, flip], areas, sigmas)
            vis = G[:, :, 2] > 0
            vis_flip = vis[:, flip]
            counted = np.array([not g['ignore'] for g in people])
            nvis = vis.sum(1)
            oks = np.where(vis[None], ks, 0).sum(2) / np.maximum(nvis, 1)[None]
            oks = np.where((counted & (nvis > 0))[None], oks, 0)
            for d, o in zip(dts, oks.max(1)):
                out['oks'][d['id'] - 1] = float(o)
        else:
            for d in dts:
                out['oks'][d['id'] - 1] = 0.0
        if e is None:
            continue
        match, ignored = e['dtMatches'][0], e['dtIgnore'][0].astype(bool)
        out['false_positives'][i] = np.count_nonzero((match == 0) & ~ignored)
        out['false_negatives'][i] = np.count_nonzero(
            (e['gtMatches'][0] == 0) & (np.asarray(e['gtIgnore']) == 0))
        row_of = {d['id']: n for n, d in enumerate(dts)}
        col_of = {g['id']: n for n, g in enumerate(people)}
        for dt_id, gt_id, ign in zip(e['dtIds'], match, ignored):
            if gt_id == 0 or ign:
                continue
            a, j = row_of[dt_id], col_of[int(gt_id)]
            others = [n for n in range(len(people)) if n != j]
            # candidates in the order ties are broken: as annotated, flipped, the others
            cand = np.concatenate([np.where(vis[j], ks[a, j], -1)[None],
                                   np.where(vis_flip[j], ks_flip[a, j], -1)[None],
                                   np.where(vis[others], ks[a, others], -1),
                                   np.where(vis_flip[others], ks_flip[a, others], -1)])
            best = cand.argmax(0)
            best_ks = cand[best, np.arange(num_k)]
            cls = np.where(best == 0, np.where(best_ks > GOOD_KS, 0, 1),
                           np.where(best == 1, 2, 3))
            cls = np.where(best_ks < CLASS_KS, 4, cls)
            for k in np.flatnonzero(vis[j]):
                out['errors'][i, k, cls[k]] += 1
                if cls[k]:
                    out['fix'][CLASSES[cls[k]]].append((dt_id - 1, k, G[j, k, 0], G[j, k, 1]))
            out['ks_sum'][i] += np.where(vis[j], ks[a, j], 0)
            out['ks_n'][i] += vis[j]
    return out


def _mean_ap(precision: np.ndarray) -> float:
    """summarize()'s mean over the entries > -1 (-1 when none)."""
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def diagnose(gt: dict, results: List[dict], keypoints: Optional[Sequence[str]] = None,
             flip: Optional[Sequence[int]] = None) -> Diagnosis:
    """Everything the diagnosis needs of one results file: 6 pycocotools evaluations (the
    strict thresholds with the OKS-0.1 matching, 4 corrected files, 1 rescored)."""
    if keypoints is None or flip is None:
        keypoints, flip = coco_keypoints()
    ev = _cocoeval(gt, results, _STRICT)
    c = _classify(ev, flip)
    precision = ev.eval['precision'][:, :, 0, list(ev.params.areaRngLbl).index('all'), -1]
    at = {t: _mean_ap(precision[_STRICT.index(float(t))]) for t in THRESHOLDS}
    oracles, oracle_ap = {}, {}
    for name in ORACLES:
        fixed = [dict(r) for r in results]
        if name == 'score':
            for n, r in enumerate(fixed):
                # ranked by OKS; ties (OKS 0: matched to nobody) keep the model's order
                r['score'] = c['oks'].get(n, 0.0) + 1e-9 * float(r['score'])
        else:
            for n, k, x, y in c['fix'][name]:
                kp = fixed[n]['keypoints'] = list(fixed[n]['keypoints'])
                kp[3 * k], kp[3 * k + 1] = float(x), float(y)
        oev = _cocoeval(gt, fixed)
        oracles[name] = bs.image_eval(oev)
        oracle_ap[name] = float(oev.stats[0])
    return Diagnosis(
        tuple(ev.params.imgIds), c['errors'], c['ks_sum'], c['ks_n'], c['false_positives'],
        c['false_negatives'], bs.image_eval(ev), oracles, at,
        _mean_ap(precision[1:]), oracle_ap,
        {t: [float(v) for v in precision[_STRICT.index(float(t))]] for t in PR_THRESHOLDS},
        tuple(keypoints))


def diagnose_file(gt_file: str, results_file: str, gt: Optional[dict] = None,
                  partial: bool = False) -> Diagnosis:
    """:func:`diagnose` of a results file on a checked ground truth, the results checked as
    for AP (:func:`~psa_pose.evaluation.results_check.check_results`; ``partial``: images with
    people may have no result)."""
    from .coco import read_gt
    from .results_check import check_results
    if gt is None:
        gt = read_gt(gt_file)
    results = read_json(results_file, 'a COCO keypoint results file')
    check_results(results, results_file, gt, gt_file, 17, partial)
    return diagnose(gt, results)


# -- re-accumulation on bootstrap resamples -------------------------------------------------

def _ap_curves(ie: bs.ImageEval, counts: np.ndarray, chunk_elems: int = 4_000_000
               ) -> np.ndarray:
    """(B, T) AP of area 'all' at each threshold of ``ie`` for each row of ``counts``."""
    g = ie.groups.get((0, ie.area_labels.index('all')))
    out = -np.ones((len(counts), len(ie.iou_thrs)))
    if g is None:
        return out
    step = max(1, chunk_elems // max(1, g.tp.size))
    for s in range(0, len(counts), step):
        prec, _ = bs.accumulate_group(g, counts[s:s + step], ie.rec_thrs)
        out[s:s + step] = np.where(prec[..., 0] > -1, prec.mean(-1), -1)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan),
                     where=den > 0)


def values(d: Diagnosis, counts: np.ndarray) -> Dict[tuple, np.ndarray]:
    """Every line of the diagnosis on each resample (rows of ``counts``, (B, I)):
    ``{(group, name): (B,)}``."""
    counts = np.asarray(counts, np.int64)
    out: Dict[tuple, np.ndarray] = {}
    cls = counts @ d.errors.sum(1)                              # (B, 5)
    for c, name in enumerate(CLASSES):
        out['errors', name] = cls[:, c].astype(float)
    ks_sum, ks_n = counts @ d.ks_sum, counts @ d.ks_n
    good = counts @ d.errors[:, :, 0]
    for k, name in enumerate(d.keypoints):
        out['ks_mean_per_keypoint', name] = _ratio(ks_sum[:, k], ks_n[:, k])
        out['good_share_per_keypoint', name] = _ratio(good[:, k], ks_n[:, k])
    curves = _ap_curves(d.strict, counts)
    for t in THRESHOLDS:
        out['AP_at', t] = curves[:, _STRICT.index(float(t))]
    out['AP', ''] = curves[:, 1:].mean(1)
    for name, ie in d.oracles.items():
        out['oracle_AP', name] = _ap_curves(ie, counts).mean(1)
    out['false_positives', ''] = (counts @ d.false_positives).astype(float)
    out['false_negatives', ''] = (counts @ d.false_negatives).astype(float)
    return out


def point(d: Diagnosis) -> Dict[tuple, float]:
    """The lines of :func:`values` on the full set (the APs: pycocotools' own)."""
    full = values(d, np.ones((1, len(d.image_ids)), np.int64))
    out = {key: float(v[0]) for key, v in full.items()}
    out.update({('AP_at', t): v for t, v in d.AP_at.items()})
    out.update({('oracle_AP', o): v for o, v in d.oracle_AP.items()})
    out['AP', ''] = d.AP
    return out


def _verdict(group: str, name: str, ci: Sequence[float]) -> str:
    lower = group in _LOWER_IS_BETTER or (group == 'errors' and name in _LOWER_IS_BETTER)
    return bs.verdict([-ci[1], -ci[0]] if lower else ci)


def _nest(flat: Dict[tuple, object]) -> Dict[str, object]:
    """``{(group, name): v}`` -> ``{group: {name: v}}``, ``{group: v}`` for a lone line."""
    out: Dict[str, object] = {}
    for (group, name), v in flat.items():
        if name == '':
            out[group] = v
        else:
            out.setdefault(group, {})[name] = v
    return out


def _clean(v):
    """JSON-safe numbers: NaN (no matched keypoint of that type) as None; counts as ints."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def check_runs(runs: List[dict], target_delta: Optional[float] = None) -> None:
    """Refuse runs without COCO results (one line naming the run) and a target ΔAP of 0."""
    if target_delta is not None and not (np.isfinite(target_delta) and target_delta != 0):
        raise UserError(f'--target-delta {target_delta}: needs the true ΔAP to plan for, a '
                        f'non-zero number such as 0.005 (half an AP point)')
    for r in runs:
        if not r.get('results') or not r.get('gt'):
            raise UserError(f'{r["source"]}: no COCO results file with its ground truth for run '
                            f'{r["config"]}; --diagnose needs them (test it with scripts/test.py '
                            f'CONFIG CKPT --out DIR/metrics.json, or pass --gt ANN --results ...)')


def _models(rows: List[dict], runs: List[dict]) -> List[List[dict]]:
    """The runs of each row, in seed order (as compare() sorted them)."""
    by_config: Dict[str, List[dict]] = {}
    for r in runs:
        by_config.setdefault(r['config'], []).append(r)
    return [sorted(by_config[row['config']], key=lambda r: r['seed']) for row in rows]


def add_diagnosis(rows: List[dict], runs: List[dict], resamples: int = 1000, seed: int = 0,
                  target_delta: Optional[float] = None, progress: bool = False) -> List[dict]:
    """The diagnosis keys (docs/diagnosis.md) of each row of
    :func:`psa_pose.evaluation.compare.compare` (rows merged with them: ``dict(row, **d)``),
    on the same bootstrap resamples as ΔAP."""
    check_runs(runs, target_delta)
    from .coco import read_gt
    models = _models(rows, runs)
    gts: Dict[str, dict] = {}
    diags: Dict[str, Diagnosis] = {}
    files = list(dict.fromkeys(r['results'] for m in models for r in m))
    for n, path in enumerate(files, 1):
        run = next(r for m in models for r in m if r['results'] == path)
        if progress:
            print(f'diagnosing {n}/{len(files)}: {path} (6 pycocotools evaluations) ...',
                  flush=True)
        if run['gt'] not in gts:
            gts[run['gt']] = read_gt(run['gt'])
        diags[path] = diagnose_file(run['gt'], path, gts[run['gt']], run.get('partial', False))
    image_ids = diags[files[0]].image_ids
    counts = bs.resample_counts(len(image_ids), max(resamples, 1), seed) if resamples else None
    if progress and counts is not None:
        print(f'diagnosis bootstrap: {resamples} resamples of the {len(image_ids)} images ...',
              flush=True)
    boot = {p: values(d, counts) for p, d in diags.items()} if counts is not None else {}
    points = {p: point(d) for p, d in diags.items()}
    keys = list(points[files[0]])
    row_of = {row['config']: i for i, row in enumerate(rows)}
    out = []
    for in_row, seeds in zip(rows, models):
        row = {}
        out.append(row)
        mean = {k: float(np.mean([points[r['results']][k] for r in seeds])) for k in keys}
        row.update(_row_values(mean, [diags[r['results']] for r in seeds]))
        if counts is not None:
            pooled = bs.pool_seeds([boot[r['results']] for r in seeds], seed, keys)
            row['diagnosis_ci'] = _clean(_nest({k: bs.interval(v[np.isfinite(v)])
                                                if np.isfinite(v).any() else None
                                                for k, v in pooled.items()}))
        if in_row['config'] == in_row['baseline']:
            continue
        row.update({f'delta_{k}_ci': None for k in _DELTA_KEYS})
        base = models[row_of[in_row['baseline']]]
        by_seed = {r['seed']: r for r in base}
        pairs = [(by_seed[r['seed']], r) for r in seeds if r['seed'] in by_seed]
        delta = {k: float(np.mean([points[p['results']][k] - points[b['results']][k]
                                   for b, p in pairs])) for k in keys}
        nested = _nest(delta)
        row['delta_errors'] = {c: _int(v, len(pairs)) for c, v in nested['errors'].items()}
        row['delta_AP_at'] = nested['AP_at']
        row['delta_ks_mean_per_keypoint'] = _clean(nested['ks_mean_per_keypoint'])
        row['delta_good_share_per_keypoint'] = _clean(nested['good_share_per_keypoint'])
        row['delta_oracle_AP'] = nested['oracle_AP']
        row['delta_false_positives'] = _int(nested['false_positives'], len(pairs))
        row['delta_false_negatives'] = _int(nested['false_negatives'], len(pairs))
        per_seed = [_run_ap(p) - _run_ap(b) for b, p in pairs]
        image_sd = None
        if counts is not None:
            b_pool = bs.pool_seeds([boot[b['results']] for b, _ in pairs], seed, keys)
            o_pool = bs.pool_seeds([boot[p['results']] for _, p in pairs], seed, keys)
            cis, verdicts = {}, {}
            for k in keys:
                diff = o_pool[k] - b_pool[k]
                diff = diff[np.isfinite(diff)]
                cis[k] = bs.interval(diff) if diff.size else None
                verdicts[k] = _verdict(*k, cis[k]) if diff.size else None
            ci, ver = _nest(cis), _nest(verdicts)
            row['delta_errors_ci'] = ci['errors']
            row['delta_AP_at_ci'] = ci['AP_at']
            row['delta_ks_mean_per_keypoint_ci'] = _clean(ci['ks_mean_per_keypoint'])
            row['delta_good_share_per_keypoint_ci'] = _clean(ci['good_share_per_keypoint'])
            row['delta_oracle_AP_ci'] = ci['oracle_AP']
            row['delta_false_positives_ci'] = ci['false_positives']
            row['delta_false_negatives_ci'] = ci['false_negatives']
            ver.pop('AP', None)
            row['diagnosis_verdicts'] = ver
            # image sampling alone: every seed pair kept, the images resampled
            seed_mean = np.mean([boot[p['results']]['AP', ''] - boot[b['results']]['AP', '']
                                 for b, p in pairs], axis=0)
            image_sd = float(np.std(seed_mean, ddof=1)) if len(seed_mean) > 1 else 0.0
        row.update(pw.summary(per_seed, image_sd, target_delta))
    return out


def _run_ap(run: dict) -> float:
    """A run's AP as compare() recorded it (pycocotools' on its results file)."""
    return float(run['metrics']['AP'])


def _int(v: float, seeds: int):
    """A count difference: an int for one seed pair, the mean over pairs otherwise."""
    return int(round(v)) if seeds == 1 else v


def _row_values(mean: Dict[tuple, float], seeds: List[Diagnosis]) -> dict:
    """A row's diagnosis keys: one seed's values, or their mean over seeds."""
    nested = _nest(mean)
    as_count = (lambda v: int(round(v))) if len(seeds) == 1 else float
    per_kp = np.mean([d.errors.sum(0) for d in seeds], axis=0)          # (K, 5)
    d = seeds[0]
    return {
        'errors': {c: as_count(v) for c, v in nested['errors'].items()},
        'errors_per_keypoint': {name: {c: as_count(per_kp[k, ci]) for ci, c in enumerate(CLASSES)}
                                for k, name in enumerate(d.keypoints)},
        'AP_at': nested['AP_at'],
        'ks_mean_per_keypoint': _clean(nested['ks_mean_per_keypoint']),
        'good_share_per_keypoint': _clean(nested['good_share_per_keypoint']),
        'oracle_AP': nested['oracle_AP'],
        'false_positives': as_count(nested['false_positives']),
        'false_negatives': as_count(nested['false_negatives']),
        'pr_curves': {t: [float(v) for v in np.mean([s.pr[t] for s in seeds], axis=0)]
                      for t in PR_THRESHOLDS},
    }


# -- rendering -------------------------------------------------------------------------------

def _lines(keypoints: Sequence[str]) -> List[Tuple[str, str, Optional[str], str]]:
    """(label, group, name, format) of each line of the diagnosis table."""
    out = [(f'{c} keypoints', 'errors', c, 'd') for c in CLASSES]
    out += [('false positives (matched to nobody at OKS 0.1)', 'false_positives', None, 'd'),
            ('false negatives (people no detection matched)', 'false_negatives', None, 'd')]
    out += [(f'AP at OKS {t}', 'AP_at', t, '.3f') for t in THRESHOLDS]
    out += [(f'AP with {o} corrected' if o != 'score' else 'AP rescored by OKS', 'oracle_AP', o,
             '.3f') for o in ORACLES]
    out += [(f'mean ks {k}', 'ks_mean_per_keypoint', k, '.3f') for k in keypoints]
    return out


def _get(row: dict, group: str, name: Optional[str], prefix: str = ''):
    v = row.get(prefix + group)
    return v.get(name) if isinstance(v, dict) and name is not None else v


def _fmt(v, fmt: str, sign: bool = False) -> str:
    if v is None:
        return ''
    if fmt == 'd' and isinstance(v, float):        # a mean over seeds
        v, fmt = (int(v), 'd') if v.is_integer() else (v, '.1f')
    return format(v, ('+' if sign else '') + fmt)


def _ci_text(ci, fmt: str) -> str:
    fmt = '.1f' if fmt == 'd' else fmt
    return '' if not ci else f'[{ci[0]:+{fmt}}, {ci[1]:+{fmt}}]'


def _pairs(rows: List[dict]) -> List[Tuple[dict, dict]]:
    by_config = {r['config']: r for r in rows}
    return [(by_config[r['baseline']], r) for r in rows if r['config'] != r['baseline']]


def _keypoints(rows: List[dict]) -> List[str]:
    return list(rows[0]['ks_mean_per_keypoint'])


def markdown(rows: List[dict]) -> str:
    """The diagnosis tables of rows merged with :func:`add_diagnosis`: per model, then one line
    per quantity of each PSA row against its baseline, with interval and verdict."""
    head = ('| model | good | jitter | inversion | swap | miss | FP | FN | AP@0.75 | AP@0.85 | '
            'AP@0.9 | AP@0.95 | AP jitter fixed | AP inversion fixed | AP swap fixed | '
            'AP miss fixed | AP rescored | MDE ΔAP | sign-flip p |')
    out = ['### Diagnosis (docs/diagnosis.md)', '', head, '|' + '---|' * 19]
    for r in rows:
        base = r['config'] == r['baseline']
        out.append(f"| {r['config']} | " + ' | '.join(_fmt(r['errors'][c], 'd') for c in CLASSES)
                   + f" | {_fmt(r['false_positives'], 'd')} | {_fmt(r['false_negatives'], 'd')} | "
                   + ' | '.join(_fmt(r['AP_at'][t], '.3f') for t in THRESHOLDS[1:]) + ' | '
                   + ' | '.join(_fmt(r['oracle_AP'][o], '.3f') for o in ORACLES)
                   + f" | {'' if base else _fmt(r.get('mde_AP'), '.4f')} | "
                   f"{'' if base else _fmt(r.get('sign_flip_p'), '.3f')} |")
    for b, r in _pairs(rows):
        out += ['', f"#### {r['config']} vs {b['config']}", '',
                '| line | baseline | PSA | Δ | Δ 95% CI | verdict |', '|---|---|---|---|---|---|']
        for label, group, name, fmt in _lines(_keypoints(rows)):
            out.append(f'| {label} | {_fmt(_get(b, group, name), fmt)} | '
                       f'{_fmt(_get(r, group, name), fmt)} | '
                       f"{_fmt(_get(r, group, name, 'delta_'), fmt, True)} | "
                       f"{_ci_text(_get(r, group + '_ci', name, 'delta_'), fmt)} | "
                       f"{_get(r.get('diagnosis_verdicts') or {}, group, name) or ''} |")
        out += ['', power_text(r)]
    return '\n'.join(out)


def power_text(r: dict) -> str:
    """The power lines of a PSA row."""
    p = r['power']
    n = p['seeds']
    text = []
    if r['mde_AP'] is not None:
        spread = ('image sampling only; one seed shows no training noise, so the true MDE is '
                  'larger' if n == 1 else f'image sampling and the spread of {n} seed pairs')
        text.append(f"Minimum detectable ΔAP: {r['mde_AP']:.4f} (80% power, two-sided 5%; "
                    f'{spread}).')
    text.append(f"Sign-flip test over the {n} seed pair{'s' * (n > 1)}: p = "
                f"{r['sign_flip_p']:.3f} (the smallest p {n} seed{'s' * (n > 1)} can give: "
                f"{r['sign_flip_min_p']:.3g}).")
    if 'seeds_needed' in r:
        text.append(f"Seeds per model for a true ΔAP of {p['target_delta']:+.4f}: "
                    f"{p['seeds_needed_why']}.")
    return ' '.join(text)


def compact(rows: List[dict]) -> str:
    """A few lines for the terminal: error classes, AP at OKS 0.9, and for each PSA row the
    differences with verdicts and the minimum detectable ΔAP."""
    out = ['Diagnosis (keypoints of detections matched at OKS 0.1; full tables in compare.md):']
    for r in rows:
        ci = (r.get('diagnosis_ci') or {}).get('AP_at', {}).get('0.9')
        out.append(f"  {r['config']}: " + ', '.join(f"{c} {_fmt(r['errors'][c], 'd')}"
                                                    for c in CLASSES)
                   + f"; FP {_fmt(r['false_positives'], 'd')}, FN {_fmt(r['false_negatives'], 'd')}"
                   + f"; AP@0.9 {r['AP_at']['0.9']:.3f}" + (f' [{ci[0]:.3f}, {ci[1]:.3f}]'
                                                             if ci else ''))
    for b, r in _pairs(rows):
        ver = r.get('diagnosis_verdicts') or {}
        parts = []
        for c in CLASSES:
            ci = (r['delta_errors_ci'] or {}).get(c)
            parts.append(f"{c} {_fmt(r['delta_errors'][c], 'd', True)}"
                         + (f" {_ci_text(ci, 'd')} {ver['errors'][c]}" if ci else ''))
        ci = (r['delta_AP_at_ci'] or {}).get('0.9')
        parts.append(f"AP@0.9 {r['delta_AP_at']['0.9']:+.3f}"
                     + (f" {_ci_text(ci, '.3f')} {ver['AP_at']['0.9']}" if ci else ''))
        out.append(f"  {r['config']} - {b['config']}: " + '; '.join(parts))
        out.append('    ' + power_text(r))
    return '\n'.join(out)


def plot(rows: List[dict], path: str) -> None:
    """diagnose.png: error classes of each model with intervals; per-joint Δks of each PSA row
    with intervals; AP against the OKS threshold; PR curves at OKS 0.5, 0.75, 0.9."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    palette = ['#8c8c8c', '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e']
    color = {r['config']: palette[i % len(palette)] for i, r in enumerate(rows)}
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    (ex, kx), (tx, px) = axes
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        x = np.arange(len(CLASSES)) + (i - (len(rows) - 1) / 2) * width
        y = np.array([r['errors'][c] for c in CLASSES], float)
        ci = (r.get('diagnosis_ci') or {}).get('errors')
        err = None if not ci else np.abs(np.array([[ci[c][0], ci[c][1]] for c in CLASSES]).T - y)
        ex.bar(x, y, width * 0.95, yerr=err, capsize=2, color=color[r['config']],
               label=r['config'])
    if any(r['errors'][c] > 0 for r in rows for c in CLASSES):
        ex.set_yscale('log')
    ex.set_xticks(range(len(CLASSES)))
    ex.set_xticklabels(CLASSES)
    ex.set_ylabel('keypoints (log scale)')
    ex.set_title('error classes, 95% bootstrap interval', fontsize=9)
    ex.legend(fontsize=7)
    names = _keypoints(rows)
    pairs = _pairs(rows)
    for i, (b, r) in enumerate(pairs):
        x = np.arange(len(names)) + (i - (len(pairs) - 1) / 2) * 0.8 / max(1, len(pairs))
        y = np.array([np.nan if r['delta_ks_mean_per_keypoint'][n] is None else
                      r['delta_ks_mean_per_keypoint'][n] for n in names], float)
        ci = r.get('delta_ks_mean_per_keypoint_ci')
        err = None
        if ci:
            lohi = np.array([ci[n] if ci[n] else [np.nan, np.nan] for n in names], float).T
            err = np.abs(lohi - y)
        kx.errorbar(x, y, yerr=err, fmt='o', capsize=2, color=color[r['config']],
                    label=f"{r['config']} - baseline")
    kx.axhline(0, color='#444444', linewidth=0.8)
    kx.set_xticks(range(len(names)))
    kx.set_xticklabels(names, rotation=60, ha='right', fontsize=7)
    kx.set_ylabel('Δ mean ks (PSA - baseline)')
    kx.set_title('per-joint precision: Δ mean ks, 95% interval', fontsize=9)
    if pairs:
        kx.legend(fontsize=7)
    thr = [float(t) for t in THRESHOLDS]
    for r in rows:
        y = [r['AP_at'][t] for t in THRESHOLDS]
        ci = (r.get('diagnosis_ci') or {}).get('AP_at')
        tx.plot(thr, y, 'o-', color=color[r['config']], label=r['config'])
        if ci:
            tx.fill_between(thr, [ci[t][0] for t in THRESHOLDS], [ci[t][1] for t in THRESHOLDS],
                            color=color[r['config']], alpha=0.2)
    tx.set_xlabel('OKS threshold')
    tx.set_ylabel('AP')
    tx.set_title('AP against the OKS threshold, 95% interval', fontsize=9)
    tx.legend(fontsize=7)
    recall = np.linspace(0, 1, 101)
    for r in rows:
        for t, style in zip(PR_THRESHOLDS, ('-', '--', ':')):
            prec = np.asarray(r['pr_curves'][t], float)
            px.plot(recall, np.where(prec > 0, prec, np.nan), style, color=color[r['config']],
                    label=f"{r['config']} OKS {t}")
    px.set_xlabel('recall')
    px.set_ylabel('precision')
    px.set_title('precision-recall at OKS 0.5 (solid), 0.75 (dashed), 0.9 (dotted)', fontsize=9)
    px.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    plt.close(fig)


def write_outputs(rows: List[dict], diagnosis: List[dict], out_dir: str) -> Dict[str, str]:
    """After compare's outputs: the diagnosis keys into compare.json, its tables appended to
    compare.md, diagnose.png."""
    merged = [dict(r, **d) for r, d in zip(rows, diagnosis)]
    paths = {'json': osp.join(out_dir, 'compare.json'), 'md': osp.join(out_dir, 'compare.md'),
             'diagnose.png': osp.join(out_dir, 'diagnose.png')}
    write_json(merged, paths['json'])
    with open(paths['md']) as f:
        md = f.read()
    with atomic_path(paths['md']) as tmp, open(tmp, 'w') as f:
        f.write(md + '\n' + markdown(merged) + '\n')
    plot(merged, paths['diagnose.png'])
    return paths
