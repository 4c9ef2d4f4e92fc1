"""COCO keypoint AP to the last digit, against values stored from the numpy-1 stack.

The stack moved to numpy 2 (xtcocotools built from its sdist, issue 24). These values were
computed with the previous stack (numpy 1.26.4, opencv-python 4.11, the xtcocotools 1.14.3 wheel)
by ``python -m tests.evaluation.test_stack_numbers``; a change of numpy, pycocotools or
xtcocotools that moves any of them by one unit in the last place fails here.

Each case is a ground truth with generated keypoint results (bootstrap_benchmark's generator:
noise, misses, false positives, no tied scores), evaluated by psa_pose's ``eval_coco`` library
(pycocotools) and by mmpose's ``CocoMetric`` (xtcocotools, with its rescoring and OKS NMS), and
bootstrapped from pycocotools' per-image evaluation.
"""
import contextlib
import io
import json
import os
from typing import Dict, List, Tuple

import numpy as np
import pytest

from psa_pose.evaluation.bootstrap_benchmark import make_gt, make_results
from psa_pose.evaluation import bootstrap as bs
from psa_pose.evaluation.coco import run_cocoeval
from psa_pose.evaluation.metrics import COCO_STATS, REPORTED, normalize_metrics

# name -> (ground truth: 'mini' or (images, people, seed), results noise, results seed)
CASES = {
    'mini_coco': ('mini', 0.05, 1),
    'generated_0': ((300, 360, 0), 0.05, 1),
    'generated_1': ((300, 360, 1), 0.08, 2),
    'generated_2': ((200, 300, 2), 0.03, 3),
}


def case_files(name: str, folder: str, mini_coco: str = '') -> Tuple[str, str, List[dict]]:
    """The ground-truth file, results file and results of a case, written into ``folder``."""
    spec, noise, seed = CASES[name]
    if spec == 'mini':
        gt_file = os.path.join(mini_coco, 'test_coco.json')
        with open(gt_file) as f:
            gt = json.load(f)
    else:
        gt = make_gt(*spec)
        gt_file = os.path.join(folder, f'{name}_gt.json')
        with open(gt_file, 'w') as f:
            json.dump(gt, f)
    results = make_results(gt, noise, seed)
    results_file = os.path.join(folder, f'{name}_results.json')
    with open(results_file, 'w') as f:
        json.dump(results, f)
    return gt_file, results_file, results


def cocometric_stats(gt_file: str, results: List[dict], seed: int) -> Dict[str, float]:
    """mmpose's CocoMetric (defaults: bbox_keypoint rescoring, OKS NMS) on the results as
    top-down predictions: one instance per result, box score the result's score, keypoint
    scores drawn from ``seed``, area that of the keypoints' box."""
    from mmpose.evaluation.metrics import CocoMetric
    from psa_pose.data.synth import _coco_metainfo
    with contextlib.redirect_stdout(io.StringIO()):
        metric = CocoMetric(ann_file=gt_file)
    metric.dataset_meta = _coco_metainfo()
    rng = np.random.default_rng(seed)
    samples = []
    for i, r in enumerate(results):
        kpts = np.asarray(r['keypoints'], float).reshape(1, -1, 3)[..., :2]
        wh = kpts[0].max(axis=0) - kpts[0].min(axis=0)
        samples.append({'id': i, 'img_id': r['image_id'], 'category_id': 1,
                        'pred_instances': {'keypoints': kpts,
                                           'keypoint_scores': rng.uniform(0.1, 1, (1, 17))},
                        'gt_instances': {'bbox_scores': np.array([r['score']]),
                                         'bbox_scales': wh[None]}})
    metric.process([], samples)
    with contextlib.redirect_stdout(io.StringIO()):
        out = metric.compute_metrics(metric.results)
    return normalize_metrics(out)


def case_stats(name: str, folder: str, mini_coco: str = '') -> Dict[str, tuple]:
    """eval_coco's and CocoMetric's stats (in COCO_STATS' order) and the bootstrap's 95%
    interval of each reported metric (200 resamples, REPORTED's order) of a case."""
    gt_file, results_file, results = case_files(name, folder, mini_coco)
    ie = bs.image_eval(run_cocoeval(gt_file, results_file, partial=True))  # misses on purpose
    boot = bs.model_intervals(bs.paired_bootstrap([[ie]], 200, seed=0), 0)
    theirs = cocometric_stats(gt_file, results, CASES[name][2])
    return {'eval_coco': tuple(ie.stats[k] for k in COCO_STATS),
            'CocoMetric': tuple(theirs[k] for k in COCO_STATS),
            'bootstrap': tuple(tuple(boot[m]) for m in REPORTED)}


# Computed with numpy 1.26.4 / opencv-python 4.11.0.86 / xtcocotools 1.14.3 (wheel) /
# pycocotools 2.0.11, before the move to numpy 2: COCOeval's stats in COCO_STATS' order.
STORED = {
    'generated_0': {
        'eval_coco': (0.5461329031728654, 0.9002979677783588, 0.5610236698842427,
                      0.556702719898349, 0.5433018184873487, 0.591304347826087,
                      0.9130434782608695, 0.6376811594202898, 0.5999999999999999,
                      0.5932835820895522),
        'CocoMetric': (0.5392234096590567, 0.8978854273839381, 0.5552298876597636,
                       0.555445021393951, 0.529986859219504, 0.591304347826087,
                       0.9130434782608695, 0.6376811594202898, 0.5999999999999999,
                       0.5932835820895522),
        'bootstrap': ((0.5166339457484649, 0.5765754596118745), (0.8640612506248208,
                      0.9306270542244107), (0.5111843282241975, 0.6305950287645609),
                      (0.5220985086000973, 0.5919150895717677), (0.48861046669420194,
                      0.6014129186157005), (0.5601726327739738, 0.6195340883606189)),
    },
    'generated_1': {
        'eval_coco': (0.31717544353674226, 0.681972672285018, 0.24454313580208517,
                      0.30957722569137436, 0.3377632194489089, 0.35414201183431954,
                      0.7159763313609467, 0.29289940828402367, 0.3481012658227848,
                      0.37478260869565216),
        'CocoMetric': (0.31442826051883144, 0.6810613036010458, 0.232459089239946,
                       0.30610111601936146, 0.3330167607364931, 0.35414201183431954,
                       0.7159763313609467, 0.29289940828402367, 0.3481012658227848,
                       0.37478260869565216),
        'bootstrap': ((0.28779368889495077, 0.3487968312574906), (0.6424123899630406,
                      0.7353644713594387), (0.1955143863220227, 0.29608835051345866),
                      (0.27453765820131126, 0.3530212424517106), (0.2887059453951893,
                      0.39278347409870046), (0.32530056239388794, 0.38829355169422464)),
    },
    'generated_2': {
        'eval_coco': (0.7607062347373876, 0.936814160356108, 0.8426034567662993,
                      0.7629197700851997, 0.765779663208249, 0.7894736842105263,
                      0.9403508771929825, 0.8596491228070176, 0.7936, 0.7919642857142858),
        'CocoMetric': (0.7500447273127707, 0.9358309677843115, 0.8387602703476812,
                       0.7558736091997782, 0.755120245712002, 0.7894736842105263,
                       0.9403508771929825, 0.8596491228070176, 0.7936, 0.7919642857142858),
        'bootstrap': ((0.728781342583627, 0.7892045822804574), (0.9069756345938492,
                      0.9569811491167013), (0.8014572119971473, 0.8856318096469551),
                      (0.7100731848538089, 0.8114447553565552), (0.7154721715572001,
                      0.8165273052038073), (0.7560757189661448, 0.8180751072961373)),
    },
    'mini_coco': {
        'eval_coco': (0.5628712871287128, 0.9108910891089109, 0.7277227722772277,
                      0.5613861386138614, 0.566077322017916, 0.575, 0.9166666666666666, 0.75,
                      0.5599999999999999, 0.5857142857142856),
        'CocoMetric': (0.5642291371994342, 0.9108910891089109, 0.7356435643564357,
                       0.5613861386138614, 0.568948609146629, 0.575, 0.9166666666666666, 0.75,
                       0.5599999999999999, 0.5857142857142856),
        'bootstrap': ((0.35340346534653466, 0.6378712871287129), (0.5742574257425742, 1.0),
                      (0.16831683168316833, 0.9405940594059405), (-1.0, 0.6),
                      (0.35340346534653466, 0.7158415841584158), (0.37142857142857144,
                      0.6411764705882353)),
    },
}



@pytest.mark.parametrize('name', sorted(CASES))
def test_ap_equals_the_values_of_the_numpy1_stack(name, tmp_path, request):
    mini = request.getfixturevalue('mini_coco') if CASES[name][0] == 'mini' else ''
    got = case_stats(name, str(tmp_path), mini)
    assert 0.2 < got['eval_coco'][0] < 0.99 and 0.2 < got['CocoMetric'][0] < 0.99
    assert got == STORED[name]


if __name__ == '__main__':      # prints STORED
    import pprint
    import tempfile
    from tests.conftest import SHARED_COCO_MINI
    with tempfile.TemporaryDirectory() as tmp:
        pprint.pprint({n: case_stats(n, tmp, SHARED_COCO_MINI) for n in sorted(CASES)},
                      width=96)
