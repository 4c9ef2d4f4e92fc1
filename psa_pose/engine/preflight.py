"""Fail fast: check what a train or test run will read before it starts.

A typo in a data path, a detection file from another split or a checkpoint that was cut short
would otherwise surface minutes (a dataloader, the first validation) or days (a silently ignored
``load_from``) into a run, as a traceback. Each check here ends in one
:class:`~psa_pose.utils.UserError` line, ``<file>: <what is wrong>; <what to do>``, which
the entry points print as ``error: ...`` with exit code 2.

Two steps, around the one construction of mmengine's Runner (:func:`checked_runner`):

1. :func:`check_config`, before the Runner exists, so nothing is built and nothing written:

   - the PSA settings of the model (``psa_cfg`` keys and values, ``psa_cfg`` on a backbone
     without PSA; :mod:`psa_pose.configcheck`, which ``load_config`` also runs);
   - every dataset the run will use (train + val for training, unless validation is off; test
     for testing): the dataset is built by mmpose with ``lazy_init=True``, so its own
     ``data_root``/``data_prefix``/``ann_file`` joining and argument checks apply and its
     keypoint count comes from its metainfo; then the data root, the image folder (and that
     every image the annotation file names exists, not decoded), the annotation file (parsed
     once per run, schema checked: COCO person keypoints JSON with 3*K values per annotation;
     other categories only in a training file, whose person annotations
     ``data.CocoPersonDataset`` keeps) and the ``bbox_file`` detections;
   - the evaluator's ``ann_file``;
   - each checkpoint the run will load (``load_from``, or the one ``--resume`` continues
     from; for training also ``init_cfg`` ``Pretrained``): present and readable as a state
     dict of tensors. Zip checkpoints are
     memory-mapped, so this reads their index, not their tensors.

2. :func:`check_weights`, after the Runner has built the model (its only build) and before
   ``train()``/``test()`` build dataloaders or load anything: each checkpoint's keys and shapes
   against the model, by the one rule of :func:`psa_pose.models.checkpoint.check_fit`: the same
   keys and shapes, except that a baseline checkpoint may leave the PSA keys missing when it
   initialises a PSA model for training (not for testing or resuming: a PSA model evaluated
   with untrained PSA blocks is not a result). mmengine then loads the checkpoint as usual
   (``strict=False``), which for a checkpoint that passed loads exactly the same tensors.

A PSA width error (an odd block width, ``psa_stages`` of the wrong length) needs the backbone's
structure, so it is raised while the Runner builds the model and mapped to the config key here.
"""
import json
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

from ..config import evaluators, psa_errors_as_lines
from ..configcheck import FIX_CONFIG, check_psa_settings
from ..utils import UserError, first_line, read_json
from ..models.checkpoint import check_fit, load_checkpoint_file, tensors_of, verify_published
from .hooks import last_checkpoint
from .pretrained import pretrained_inits
from ..data.coco import leaf_datasets
from ..data.cocofile import read_coco_keypoints

RUN_KINDS = ('train', 'test')
RESUME = '--resume'              # CheckpointToLoad.where of the checkpoint a run resumes from


@dataclass
class CheckpointToLoad:
    """A checkpoint the run will load, read by :func:`check_config`."""
    where: str                      # the config key that names it, e.g. 'load_from'
    source: str                     # its path or URL
    module: str                     # the model's submodule it goes into ('' = the model)
    state_dict: Dict[str, torch.Tensor] = field(repr=False)


def checked_runner(cfg: Config, config: str, build: Callable[[Config], Any], mode: str) -> Any:
    """``build(cfg)`` (the Runner) between :func:`check_config` and :func:`check_weights`."""
    checkpoints = check_config(cfg, config, mode)
    # the block width and psa_stages need the backbone's structure: found as it is built
    with psa_errors_as_lines(cfg, config):
        runner = build(cfg)
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_weights(model, checkpoints, config, mode)
    return runner


def check_config(cfg: Config, config: str, mode: str) -> List[CheckpointToLoad]:
    """Everything that needs no model (see the module docstring); returns the checkpoints the
    run will load, for :func:`check_weights`."""
    if mode not in RUN_KINDS:
        raise ValueError(f'mode must be one of {RUN_KINDS}, got {mode!r}')
    check_psa_settings(cfg, config)
    check_data(cfg, config, mode)
    return read_checkpoints(cfg, config, mode)


# -- PSA -------------------------------------------------------------------------------------
# -- data ------------------------------------------------------------------------------------
def _remote(path: str) -> bool:
    """A URL-like path (s3://, http://) that mmengine's file backends read: not checked here."""
    return '://' in path


def used_splits(cfg: Config, mode: str) -> List[str]:
    if mode == 'test':
        return ['test']
    # the Runner validates when val_cfg and val_dataloader are set (val_cfg=dict() is set);
    # train.py's --no-validate sets both to None
    validates = cfg.get('val_cfg') is not None and cfg.get('val_dataloader') is not None
    return ['train', 'val'] if validates else ['train']


class _DataChecker:
    """Checks the datasets of one run; parses each annotation file once."""

    def __init__(self, config: str) -> None:
        self.config = config
        self.image_ids: Dict[Tuple[str, Optional[int], bool], Set[int]] = {}
        self.image_files: Dict[str, List[str]] = {}

    def dataset(self, path: str, dataset_cfg: dict) -> Optional[int]:
        """Check one (leaf) dataset config; return its keypoint count."""
        from mmengine.dataset import BaseDataset
        from mmpose.registry import DATASETS
        type_ = dataset_cfg.get('type')
        cls = type_ if isinstance(type_, type) else DATASETS.get(type_) if type_ else None
        if cls is None:
            raise UserError(f'{self.config}: {path}.type {type_!r} is not a registered dataset; '
                            f'{FIX_CONFIG}')
        if not (isinstance(cls, type) and issubclass(cls, BaseDataset)):
            return None       # not one of mmengine's datasets: we do not know its fields
        where = f'in {self.config}'
        root = dataset_cfg.get('data_root')
        if root and not _remote(root) and not osp.isdir(root):
            raise UserError(f'{root}: data root of {path} does not exist; set {path}.data_root '
                            f'{where} (or with --cfg-options) to the dataset folder')
        try:
            # mmpose's own argument checks and path joining; lazy_init: nothing is read yet.
            # Its warnings (the metainfo file's location) come again when the Runner builds it.
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                ds = DATASETS.build({**dataset_cfg, 'lazy_init': True})
        except (AssertionError, KeyError, TypeError, ValueError) as e:
            text = ' '.join(str(e).split())       # one line, whatever mmpose's message is
            raise UserError(f'{self.config}: {path} cannot be built ({type(e).__name__}: '
                            f'{text}); {FIX_CONFIG}') from None
        num_keypoints = ds.metainfo.get('num_keypoints')
        ann_file = ds.ann_file
        for key, folder in ds.data_prefix.items():
            if folder and not _remote(folder) and not osp.isdir(folder):
                raise UserError(f'{folder}: {key} folder of {path} does not exist; check '
                                f'{path}.data_prefix.{key} and data_root {where}')
        if not ann_file:
            raise UserError(f'{self.config}: {path}.ann_file is not set; set it to the COCO '
                            f'keypoints annotation file')
        if _remote(ann_file):
            return num_keypoints
        if not osp.isfile(ann_file):
            raise UserError(f'{ann_file}: annotation file of {path} does not exist; check '
                            f'{path}.ann_file and data_root {where}')
        # training keeps the person annotations of a mixed file (data.CocoPersonDataset); a
        # test set must be person only, as the COCO metric counts every annotation
        image_ids = self.annotations(ann_file, num_keypoints, f'{path}.ann_file',
                                     mixed=path.startswith('train_'))
        img_folder = ds.data_prefix.get('img')
        files = self.image_files.get(osp.abspath(ann_file), [])
        if img_folder is not None and not _remote(img_folder):
            # every image, not decoded (cheap); a folder that exists but is the wrong one
            # (train2017 for val2017) is caught here too
            missing = [f for f in files if not osp.isfile(osp.join(img_folder, f))]
            if missing:
                raise UserError(f'{osp.join(img_folder, missing[0])}: no such image '
                                f'({len(missing)} of the {len(files)} images of {ann_file} are '
                                f'missing); check {path}.data_prefix.img and data_root {where}')
        bbox_file = getattr(ds, 'bbox_file', None)
        if bbox_file:
            self.detections(bbox_file, image_ids, ann_file, f'{path}.bbox_file')
        return num_keypoints

    def annotations(self, ann_file: str, num_keypoints: Optional[int], where: str,
                    mixed: bool = False) -> Set[int]:
        """Check that ``ann_file`` is COCO person keypoints JSON (other categories too when
        ``mixed``); return its image ids."""
        key = (osp.abspath(ann_file), num_keypoints, mixed)
        if key not in self.image_ids:
            self.image_ids[key] = self._parse_annotations(ann_file, num_keypoints, where, mixed)
        return self.image_ids[key]

    def _parse_annotations(self, ann_file: str, num_keypoints: Optional[int],
                           where: str, mixed: bool) -> Set[int]:
        data = read_coco_keypoints(
            ann_file, f'{where} in {self.config} must be a COCO keypoints annotation file such '
            f'as person_keypoints_val2017.json', num_keypoints, mixed)
        self.image_files[osp.abspath(ann_file)] = [img['file_name'] for img in data['images']]
        return {img['id'] for img in data['images']}

    def detections(self, bbox_file: str, image_ids: Set[int], ann_file: str,
                   where: str) -> None:
        """Check mmpose's ``bbox_file``: a JSON list of person detections on ``ann_file``'s
        images (what ``BaseCocoStyleDataset._load_detection_results`` reads)."""
        fix = (f'{where} in {self.config} must be a JSON list of detections {{"image_id", '
               f'"category_id", "bbox": [x, y, w, h], "score"}}')
        if _remote(bbox_file):
            return
        if not osp.isfile(bbox_file):
            raise UserError(f'{bbox_file}: no such detection file; {fix}, or null to use the '
                            f'ground-truth boxes')
        dets = read_json(bbox_file, 'person detections', fix=fix)
        if not isinstance(dets, list) or not dets:
            raise UserError(f'{bbox_file}: holds {_describe(dets)}, not a list of detections; '
                            f'{fix}')
        number = (int, float)
        for i, det in enumerate(dets):
            # category_id is read for every detection by mmpose (only category 1 is kept)
            ok = isinstance(det, dict) and isinstance(det.get('image_id'), int) \
                and isinstance(det.get('category_id'), int) \
                and isinstance(det.get('score'), number) and isinstance(det.get('bbox'), list) \
                and len(det['bbox']) == 4 and all(isinstance(v, number) for v in det['bbox'])
            if not ok:
                raise UserError(f'{bbox_file}: detection #{i} is not a detection '
                                f'({json.dumps(det)[:80]}); {fix}')
            if det['image_id'] not in image_ids:
                raise UserError(f'{bbox_file}: detection #{i} is on image_id {det["image_id"]}, '
                                f'which {ann_file} does not have; use the detections of the '
                                f'same split as the annotation file')


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return 'an empty list'
    return f'a JSON {type(value).__name__}'


def check_data(cfg: Config, config: str, mode: str) -> None:
    """The datasets and evaluator annotation files the run uses (see the module docstring)."""
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    checker = _DataChecker(config)
    for split in used_splits(cfg, mode):
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not isinstance(loader.get('dataset'), dict):
            raise UserError(f'{config}: {split}_dataloader.dataset is not set; the {mode} run '
                            f'needs it')
        counts = [checker.dataset(path, d) for path, d in
                  leaf_datasets(loader['dataset'], f'{split}_dataloader.dataset')]
        num_keypoints = counts[0] if len(set(counts)) == 1 else None
        for i, evaluator in enumerate(evaluators(cfg, split)):
            ann_file = evaluator.get('ann_file')
            if not ann_file or _remote(ann_file):
                continue
            where = f'{split}_evaluator.ann_file'
            if not osp.isfile(ann_file):
                raise UserError(f'{ann_file}: annotation file of {split}_evaluator does not '
                                f'exist; check {where} in {config}')
            checker.annotations(ann_file, num_keypoints, where)


# -- checkpoints -----------------------------------------------------------------------------
def read_checkpoint(source: str, where: str, config: str,
                    prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The state dict of the checkpoint ``source`` (path or URL) that config key ``where``
    names, or a one-line :class:`UserError` saying why it cannot be used."""
    named = '(the checkpoint --resume continues from)' if where == RESUME else \
        f'({where} in {config})'
    if _remote(source):
        from mmengine.runner.checkpoint import CheckpointLoader
        try:
            # downloads into the cache the run will load it from
            ckpt = CheckpointLoader.load_checkpoint(source, map_location='cpu')
        except Exception as e:  # noqa: BLE001 - every backend fails in its own way
            raise UserError(f'{source}: cannot be loaded ({first_line(e)}) {named}; check '
                            f'the URL and the network, or download it and give its path') \
                from None
    else:
        source = osp.expanduser(source)
        verify_published(source)            # a release whose hash does not match its name
        ckpt = load_checkpoint_file(source, named)
    return tensors_of(ckpt, source, named, prefix)


def read_checkpoints(cfg: Config, config: str, mode: str) -> List[CheckpointToLoad]:
    """Read each checkpoint the run loads: ``load_from``, or when resuming the checkpoint it
    resumes from (``load_from``, else the work dir's latest, as mmengine finds it) and, for
    training, every ``init_cfg`` of type ``Pretrained`` of the model and its parts
    (``runner.test()`` does not initialise weights)."""
    found = []
    resumes = mode == 'train' and cfg.get('resume')
    if resumes:
        source = cfg.get('load_from') or last_checkpoint(cfg.get('work_dir'), exists=False)
        if source:
            found.append(CheckpointToLoad(RESUME, source, '',
                                          read_checkpoint(source, RESUME, config)))
    elif cfg.get('load_from'):
        found.append(CheckpointToLoad('load_from', cfg.load_from, '',
                                      read_checkpoint(cfg.load_from, 'load_from', config)))
    if mode == 'train':
        for where, module, init in pretrained_inits(cfg, config):
            found.append(CheckpointToLoad(where, init['checkpoint'], module, read_checkpoint(
                init['checkpoint'], where, config, prefix=init.get('prefix'))))
    return found


def check_weights(model: nn.Module, checkpoints: List[CheckpointToLoad], config: str,
                  mode: str) -> None:
    """Each checkpoint's keys and shapes against the built model (nothing is loaded), by the
    one rule of :func:`~psa_pose.models.checkpoint.check_fit`: exactly, except that a baseline
    checkpoint may leave the PSA keys of a model it initialises for training (``load_from``,
    ``init_cfg``) missing, and ``init_cfg`` checkpoints may hold keys the model lacks (an
    ImageNet classifier)."""
    for ckpt in checkpoints:
        module = model.get_submodule(ckpt.module) if ckpt.module else model
        initialises = mode == 'train' and ckpt.where != RESUME
        fix = 'test it with the config it was trained with' if mode == 'test' else \
            'resume from a checkpoint of a run of this config' if ckpt.where == RESUME else \
            f'{ckpt.where} must be a checkpoint of this architecture'
        report = check_fit(module, ckpt.state_dict, ckpt.source, config, fix,
                           allow_missing_psa=initialises,
                           allow_extra=initialises and ckpt.where != 'load_from')
        print_log(f'preflight: {ckpt.where}: {report.summary()}', logger='current')
