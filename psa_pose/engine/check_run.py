"""``train.py --check`` / ``test.py --check``: the pre-flight checks only, and what the run
would use, before a job is queued.

The checks are :mod:`.preflight`'s (the same ones every run does first); the model is built once
to compare each checkpoint's keys with it; nothing is trained, evaluated or written. The summary
says per split the data root, annotation file, images and people, image folder and detection
file with its number of boxes, and each pretrained checkpoint with whether it is in the local
cache (a node without internet needs it there: ``scripts/fetch_pretrained.sh``).
"""
import os.path as osp
import warnings
from typing import List

from mmengine.config import Config

from ..data.cocofile import read_coco_keypoints
from ..data.coco import leaf_datasets
from ..utils import read_json
from .preflight import check_config, check_weights, used_splits
from .pretrained import describe, pretrained_sources


def _dataset_lines(split: str, path: str, dataset_cfg: dict) -> List[str]:
    from mmpose.registry import DATASETS
    with warnings.catch_warnings():      # preflight built it already and said what it had to
        warnings.simplefilter('ignore')
        ds = DATASETS.build({**dataset_cfg, 'lazy_init': True})
    data = read_coco_keypoints(ds.ann_file, 'checked by the preflight')
    people = [a for a in data['annotations'] if not a.get('iscrowd')]
    with_kpts = sum(1 for a in people if a.get('num_keypoints', 1) > 0)
    lines = [f'{split}: {path}: data root {dataset_cfg.get("data_root")}',
             f'{split}:   annotations {ds.ann_file}: {len(data["images"])} images, '
             f'{len(people)} people ({with_kpts} with keypoints)',
             f'{split}:   images {ds.data_prefix.get("img")}']
    bbox_file = getattr(ds, 'bbox_file', None)
    if bbox_file:
        boxes = read_json(bbox_file, 'person detections')     # checked by the preflight
        lines.append(f'{split}:   person boxes {bbox_file}: {len(boxes)} detections')
    elif split != 'train':
        lines.append(f'{split}:   person boxes: the ground-truth boxes (no bbox_file)')
    return lines


def summary(cfg: Config, config: str, mode: str, pretrained: List[str]) -> List[str]:
    """What the checked run would read, one line each; ``pretrained``: :func:`describe` of
    each pretrained checkpoint, taken before the checks (which may download them)."""
    lines = [f'config: {osp.abspath(config)} ({mode})']
    for split in used_splits(cfg, mode):
        for path, dataset_cfg in leaf_datasets(cfg[f'{split}_dataloader']['dataset'],
                                                f'{split}_dataloader.dataset'):
            lines += _dataset_lines(split, path, dataset_cfg)
    if cfg.get('load_from'):
        lines.append(f'weights: load_from {cfg.load_from}')
    if mode == 'train':
        lines += [f'pretrained: {where}: {state}' for (where, _), state in
                  zip(pretrained_sources(cfg, config), pretrained)] or \
            ['pretrained: none (trained from scratch)']
    return lines


def check_only(cfg: Config, config: str, mode: str) -> int:
    """Run the checks of a ``mode`` run of ``cfg`` and print the summary; raises the checks'
    one-line :class:`~psa_pose.utils.UserError`."""
    from ..config import build_model
    pretrained = [describe(src) for _, src in pretrained_sources(cfg, config)] if mode == 'train' \
        else []
    checkpoints = check_config(cfg, config, mode)
    check_weights(build_model(cfg), checkpoints, config, mode)
    print('\n'.join(summary(cfg, config, mode, pretrained)))
    print(f'check passed: the {mode} run of {osp.basename(config)} finds everything it reads '
          f'(nothing was run or written)')
    return 0
