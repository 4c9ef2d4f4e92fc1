"""What ``test.py`` writes after a test, all or nothing, never over an input.

* :func:`check_test_outputs` (before the test): ``--out``, ``--coco-results`` and ``--dump`` may
  not name the config, the checkpoint, the ground truth, the detections or one another.
* :func:`dump_temp`: where mmengine's ``DumpResults`` writes the pickle, a temporary beside
  ``--dump`` that only :func:`write_test_outputs` renames into place.
* :func:`write_test_outputs` (after the test): the model's COCO results are checked
  (:mod:`psa_pose.evaluation.results_check`) before any number is written; every output is
  written to its temporary first and renamed only when all are complete, so a check that fails,
  a full disk or a kill leaves the previous files as they were. ``metrics.json`` records its
  results file relative to its folder and the ground truth, both with their sha256
  (:mod:`psa_pose.evaluation.run_record`).
"""
import json
import os
import os.path as osp
import shutil
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

from mmengine.config import Config

from ..data.cocofile import read_coco_keypoints
from ..utils import atomic_path, check_outputs, no_space_errors, temp_path
from .results_check import check_results
from .run_record import record_file

COCO_METRIC = 'CocoMetric'


def scoring_evaluator(cfg: Config) -> dict:
    """The first (scoring) evaluator of a test config."""
    evaluator = cfg.test_evaluator
    return evaluator[0] if isinstance(evaluator, list) else evaluator


def inputs_of_test(cfg: Config, config: str, checkpoint: str) -> Dict[str, Optional[str]]:
    """The files a test reads, by what they are: outputs may name none of them."""
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    root = ds.get('data_root') or ''
    ann = ds.get('ann_file')
    return {'the config': config, 'the checkpoint': checkpoint,
            'test_evaluator.ann_file': scoring_evaluator(cfg).get('ann_file'),
            'test_dataloader.dataset.ann_file': osp.join(root, ann) if ann else None,
            'test_dataloader.dataset.bbox_file': ds.get('bbox_file') or None}


def check_test_outputs(cfg: Config, config: str, checkpoint: str, out: Optional[str],
                       coco_results: Optional[str], dump: Optional[str]) -> None:
    """Refuse (one line) outputs that would replace an input or each other."""
    check_outputs({'--out': out, '--coco-results': coco_results, '--dump': dump},
                  inputs_of_test(cfg, config, checkpoint))


def dump_temp(dump: str) -> str:
    """Where ``DumpResults`` writes ``--dump`` (it insists on a ``.pkl`` ending)."""
    return temp_path(dump, '.pkl')


def partial_by_design(cfg: Config) -> bool:
    """Whether the test may leave images with people without results: the boxes come from a
    detector (``bbox_file``; it can miss every person of an image), or the config tests a
    subset (``indices``)."""
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    return bool(ds.get('bbox_file')) or ds.get('indices') is not None


def check_model_results(coco_json: str, gt_file: str, partial: bool) -> None:
    """The checks of :func:`~psa_pose.evaluation.results_check.check_results` on the COCO
    results a test made (mmpose's ``CocoMetric`` file ``coco_json``); keypoints as many as the
    ground truth's person category names (17 where it names none)."""
    gt = read_coco_keypoints(gt_file, 'test_evaluator.ann_file must be the test set\'s COCO '
                             'keypoints file')
    person = next(c for c in gt['categories'] if c.get('name') == 'person')
    num_keypoints = len(person['keypoints']) if isinstance(person.get('keypoints'), list) \
        else 17
    with open(coco_json) as f:
        results = json.load(f)
    check_results(results, coco_json, gt, gt_file, num_keypoints, partial, flag=None)


def write_test_outputs(metrics: Dict[str, Any], record: Dict[str, Any], out: Optional[str],
                       coco_json: Optional[str], coco_results: Optional[str],
                       dump: Optional[str], gt_file: Optional[str],
                       partial: bool) -> List[str]:
    """Check the model's COCO results ``coco_json`` (where there is a ground truth), then write
    ``--coco-results`` (a copy of them), ``--out`` (``record``, the recorded files and the
    metrics) and rename the dump's temporary: all or nothing. Returns the lines to print."""
    if coco_json and gt_file:
        check_model_results(coco_json, gt_file, partial)
    done = []
    try:
        with ExitStack() as stack:
            # entered first, renamed last: metrics.json never names results not yet in place
            out_tmp = stack.enter_context(atomic_path(out)) if out else None
            coco_tmp = stack.enter_context(atomic_path(coco_results)) if coco_results else None
            if dump:
                stack.enter_context(atomic_path(dump, '.pkl'))    # DumpResults wrote it
            # each write names its own file when the disk is full (the temporaries are nested)
            if coco_tmp:
                with no_space_errors(coco_results):
                    shutil.copyfile(coco_json, coco_tmp)
                done.append(f'COCO results written to {coco_results}')
            if dump:
                done.append(f'predictions dumped to {dump}')
            if out_tmp:
                run_dir = osp.dirname(osp.abspath(out))
                data = {**record,
                        **record_file('ann_file', gt_file, run_dir),
                        **record_file('coco_results', coco_results, run_dir, coco_tmp),
                        'partial_results': partial,
                        **{k: float(v) for k, v in metrics.items()}}
                with no_space_errors(out), open(out_tmp, 'w') as f:
                    json.dump(data, f, indent=2)
                    f.write('\n')
                done.append(f'metrics written to {out}')
    finally:
        discard_test_outputs(dump)
    return done


def discard_test_outputs(dump: Optional[str]) -> None:
    """After a test that failed: remove the dump's temporary, if the test got as far."""
    if dump and osp.exists(dump_temp(dump)):
        os.remove(dump_temp(dump))

