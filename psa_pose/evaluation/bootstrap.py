"""Paired bootstrap over images for COCO keypoint metrics: intervals on AP and on ΔAP.

Each results file is evaluated once with pycocotools (``COCOeval('keypoints').evaluate()``: the
per-image OKS matching). A resample of the images with replacement is then a vector of counts
(how often each image was drawn), and its metrics are ``COCOeval.accumulate`` + ``summarize``
recomputed on the same per-image matches with every image's detections and ground truths
weighted by its count: :func:`accumulate` is a vectorised re-implementation of pycocotools'
``accumulate`` for such weights, equal to running pycocotools on a ground truth in which the
drawn images are duplicated (tested), as long as no two detections share a score (pycocotools
breaks ties by image order; duplicated copies of one detection are adjacent either way).

Both models of a comparison are accumulated on the same resamples (a paired bootstrap), so the
interval of ΔAP reflects how much the difference depends on which images were drawn. With
several training seeds per model, each resample also draws the seeds with replacement (seed k of
the baseline stays paired with seed k of the PSA model), and the statistic is the mean over the
drawn seeds; with one seed this is the plain image bootstrap.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .metrics import COCO_STATS, REPORTED

LEVEL = 0.95
VERDICTS = ('better', 'worse', 'no detectable difference')
# (metric, IoU threshold or None for all, area label, AP (precision) or AR (recall)), in
# COCOeval.summarize()'s order for iouType 'keypoints'
_SUMMARY = (('AP', None, 'all', True), ('AP50', .5, 'all', True), ('AP75', .75, 'all', True),
            ('APM', None, 'medium', True), ('APL', None, 'large', True),
            ('AR', None, 'all', False), ('AR50', .5, 'all', False),
            ('AR75', .75, 'all', False), ('ARM', None, 'medium', False),
            ('ARL', None, 'large', False))
assert tuple(s[0] for s in _SUMMARY) == COCO_STATS


class _Group(NamedTuple):
    """One (category, area range) of the per-image evaluation, detections in the order
    pycocotools' accumulate sorts them (score descending, stable)."""
    image: np.ndarray      # (N,) image index of each detection
    tp: np.ndarray         # (T, N) bool: matched, not ignored
    fp: np.ndarray         # (T, N) bool: unmatched, not ignored
    gts: np.ndarray        # (I,) non-ignored ground truths of each image


class ImageEval(NamedTuple):
    """What :func:`accumulate` needs of a ``COCOeval`` after ``evaluate()``."""
    image_ids: Tuple
    groups: Dict[Tuple[int, int], _Group]     # (k, a) -> group; absent: no images
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    area_labels: Tuple[str, ...]
    num_cats: int
    stats: Dict[str, float]                   # pycocotools' own, on the full set


def image_eval(ev) -> ImageEval:
    """The per-image matches of an evaluated ``COCOeval`` (``evaluate()`` run), for
    :func:`accumulate`; ``stats`` are pycocotools' if ``summarize()`` was run."""
    p = ev.params
    cat_ids = p.catIds if p.useCats else [-1]
    num_imgs, num_areas = len(p.imgIds), len(p.areaRng)
    max_det = p.maxDets[-1]
    groups = {}
    for k in range(len(cat_ids)):
        for a in range(num_areas):
            base = k * num_areas * num_imgs + a * num_imgs
            entries = [(i, e) for i, e in enumerate(ev.evalImgs[base:base + num_imgs])
                       if e is not None]
            if not entries:
                continue
            scores = np.concatenate([e['dtScores'][:max_det] for _, e in entries])
            order = np.argsort(-scores, kind='mergesort')
            image = np.concatenate([np.full(len(e['dtScores'][:max_det]), i, np.int64)
                                    for i, e in entries])[order]
            matched = np.concatenate([e['dtMatches'][:, :max_det] for _, e in entries],
                                     axis=1)[:, order].astype(bool)
            ignored = np.concatenate([e['dtIgnore'][:, :max_det] for _, e in entries],
                                     axis=1)[:, order].astype(bool)
            gts = np.zeros(num_imgs, np.int64)
            for i, e in entries:
                gts[i] = np.count_nonzero(np.asarray(e['gtIgnore']) == 0)
            groups[k, a] = _Group(image, matched & ~ignored, ~matched & ~ignored, gts)
    stats = {name: float(v) for name, v in zip(COCO_STATS, getattr(ev, 'stats', []))}
    return ImageEval(tuple(p.imgIds), groups, np.asarray(p.iouThrs), np.asarray(p.recThrs),
                     tuple(p.areaRngLbl), len(cat_ids), stats)


def _first_reaching(npig: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """(B, R): the least integer v with ``v / npig >= thr`` in floating point, i.e. the number
    of true positives at which pycocotools' ``searchsorted(rc, recThrs)`` stops."""
    n = npig[:, None].astype(float)
    v = np.ceil(rec_thrs[None] * n).astype(np.int64) - 1
    for _ in range(3):       # the product rounds; step up to the exact boundary
        v = np.where(v / n >= rec_thrs[None], v, v + 1)
    down = v - 1
    return np.where((down >= 0) & (down / n >= rec_thrs[None]), down, v)


def accumulate_group(g: _Group, counts: np.ndarray, rec_thrs: np.ndarray
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """precision (B, T, R) and recall (B, T) of one group for count vectors (B, I)."""
    num_b = len(counts)
    num_t, num_d = g.tp.shape
    num_r = len(rec_thrs)
    npig = counts @ g.gts
    precision = -np.ones((num_b, num_t, num_r))
    recall = -np.ones((num_b, num_t))
    live = npig > 0
    if not live.any():
        return precision, recall
    if num_d == 0:
        precision[live], recall[live] = 0.0, 0.0
        return precision, recall
    idx = np.flatnonzero(live)
    w = counts[idx][:, g.image]                               # (b, N) weight of each detection
    tp = np.cumsum(w[:, None, :] * g.tp[None], axis=2)        # (b, T, N) integers, as floats
    fp = np.cumsum(w[:, None, :] * g.fp[None], axis=2)
    pr = tp / (fp.astype(float) + tp + np.spacing(1))
    pr = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]   # pycocotools' envelope
    need = _first_reaching(npig[idx], rec_thrs)               # (b, R)
    # one searchsorted over all rows: integer offsets keep the rows apart exactly
    rows = len(idx) * num_t
    span = int(npig[idx].max()) + 2
    offset = (np.arange(rows, dtype=np.int64) * span).reshape(len(idx), num_t)
    flat = (tp + offset[..., None]).ravel()
    query = (need[:, None, :] + offset[..., None]).ravel()
    pos = np.searchsorted(flat, query, side='left').reshape(len(idx), num_t, num_r)
    local = pos - (np.arange(rows) * num_d).reshape(len(idx), num_t, 1)
    found = local < num_d
    q = pr.reshape(-1)[np.minimum(pos, flat.size - 1)]
    precision[idx] = np.where(found, q, 0.0)
    recall[idx] = tp[..., -1] / npig[idx][:, None]
    return precision, recall


def accumulate(ie: ImageEval, counts: np.ndarray, chunk_elems: int = 4_000_000
               ) -> Dict[str, np.ndarray]:
    """COCO's 10 keypoint metrics for each row of ``counts`` (B, I): how often each image of
    ``ie.image_ids`` is in the resample (all ones: the full set)."""
    counts = np.asarray(counts, np.int64)
    num_b = len(counts)
    num_t, num_r = len(ie.iou_thrs), len(ie.rec_thrs)
    num_k, num_a = ie.num_cats, len(ie.area_labels)
    precision = -np.ones((num_b, num_t, num_r, num_k, num_a))
    recall = -np.ones((num_b, num_t, num_k, num_a))
    for (k, a), g in ie.groups.items():
        step = max(1, chunk_elems // max(1, g.tp.size))
        for s in range(0, num_b, step):
            precision[s:s + step, :, :, k, a], recall[s:s + step, :, k, a] = \
                accumulate_group(g, counts[s:s + step], ie.rec_thrs)
    out = {}
    for name, iou, area, is_ap in _SUMMARY:
        a = ie.area_labels.index(area)
        if iou is None:
            t = slice(None)
        else:
            [i] = np.where(iou == ie.iou_thrs)[0]
            t = slice(i, i + 1)      # a slice, not an index array: keeps the axes in place
        values = precision[:, t, :, :, a] if is_ap else recall[:, t, :, a]
        # summarize()'s mean over the entries > -1, row by row for the same float sums
        out[name] = np.array([np.mean(v[v > -1]) if (v > -1).any() else -1.0
                              for v in values])
    return out


def resample_counts(num_images: int, num_resamples: int, seed: int) -> np.ndarray:
    """(B, I) counts of each image in B resamples of the images with replacement."""
    rng = np.random.default_rng([seed, 0])
    draws = rng.integers(0, num_images, size=(num_resamples, num_images))
    rows = np.arange(num_resamples)[:, None] * num_images
    return np.bincount((draws + rows).ravel(), minlength=num_resamples * num_images) \
        .reshape(num_resamples, num_images)


def interval(values: np.ndarray, level: float = LEVEL) -> List[float]:
    """The percentile interval ``[low, high]`` of bootstrap values."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def verdict(ci: Sequence[float]) -> str:
    """'better' when the interval of a difference lies above 0, 'worse' below, else
    'no detectable difference'."""
    if ci[0] > 0:
        return 'better'
    if ci[1] < 0:
        return 'worse'
    return 'no detectable difference'


class Bootstrap(NamedTuple):
    """Per model: the values of each metric on each resample, pooled over seeds."""
    values: List[Dict[str, np.ndarray]]       # one per model, metric -> (B,)
    num_resamples: int
    num_images: int
    seed: int


def pool_seeds(per_seed: Sequence[Dict[str, np.ndarray]], seed: int,
               metrics: Sequence[str] = REPORTED) -> Dict[str, np.ndarray]:
    """One model's bootstrap values pooled over its seeds: each resample b draws the seeds with
    replacement (from ``seed``, so every model with as many seeds draws the same ones, which
    keeps seed k of two models paired) and averages their values on that resample."""
    num_seeds = len(per_seed)
    if num_seeds == 1:
        return {m: per_seed[0][m] for m in metrics}
    num_b = len(per_seed[0][metrics[0]])
    picks = np.random.default_rng([seed, 1]).integers(0, num_seeds, size=(num_b, num_seeds))
    cols = np.arange(num_b)[:, None]
    return {m: np.stack([v[m] for v in per_seed])[picks, cols].mean(axis=1) for m in metrics}


def paired_bootstrap(models: Sequence[Sequence[ImageEval]], num_resamples: int = 1000,
                     seed: int = 0, metrics: Sequence[str] = REPORTED) -> Bootstrap:
    """``models[m][s]``: model m's evaluation of seed s (all on one ground truth, the same
    number of seeds per model, seed s of every model paired). Every model is accumulated on
    the same image resamples; each resample also draws the seeds with replacement."""
    image_ids = models[0][0].image_ids
    for runs in models:
        if len(runs) != len(models[0]):
            raise ValueError('every model needs the same number of seeds')
        for ie in runs:
            if ie.image_ids != image_ids:
                raise ValueError('all results must be evaluated on the same ground truth')
    counts = resample_counts(len(image_ids), num_resamples, seed)
    pooled = [pool_seeds([accumulate(ie, counts) for ie in runs], seed, metrics)
              for runs in models]
    return Bootstrap(pooled, num_resamples, len(image_ids), seed)


def summarize_pair(boot: Bootstrap, base: int, other: int, point_delta: Dict[str, float],
                   metrics: Sequence[str] = REPORTED) -> Dict[str, dict]:
    """Intervals and verdicts of ``other - base`` for each metric: ``{'delta_ci': {m: [l, h]},
    'verdicts': {m: verdict}}``; ``point_delta`` is the full-set difference (never a bootstrap
    mean)."""
    ci, verdicts = {}, {}
    for m in metrics:
        diff = boot.values[other][m] - boot.values[base][m]
        ci[m] = interval(diff)
        verdicts[m] = verdict(ci[m])
    return {'delta_ci': ci, 'verdicts': verdicts, 'delta': dict(point_delta)}


def model_intervals(boot: Bootstrap, model: int,
                    metrics: Sequence[str] = REPORTED) -> Dict[str, List[float]]:
    """Each metric's percentile interval for one model."""
    return {m: interval(boot.values[model][m]) for m in metrics}


def seed_stats(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof 1; None for one seed)."""
    arr = np.asarray(values, float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)
