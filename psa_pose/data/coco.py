"""COCO person keypoints as train.py and test.py read them: only the person category, and
images that cannot be decoded named in one line (or, for training on request, skipped).

mmpose's ``CocoDataset`` loads every annotation of its file as a person and its ``LoadImage``
ends a run in a traceback at the first image it cannot decode, possibly hours in.
:func:`use_checked_loading` swaps the two, in a loaded config, for the subclasses here (same
arguments), as ``psa_pose.engine.add_safety_hooks`` swaps the checkpoint hook.
"""
import logging
from typing import Any, Iterator, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from mmpose.datasets import CocoDataset
from mmpose.datasets.transforms import LoadImage
from mmpose.registry import DATASETS, TRANSFORMS

from ..utils import UserError


UNDECODABLE = 'cannot be decoded as an image (the file is corrupt or is not an image)'


class ImageDecodeError(UserError):
    """An image of the dataset cannot be read or decoded (one line, exit code 2)."""


def decode_error_line(e: ImageDecodeError) -> str:
    """The one line of an :class:`ImageDecodeError`, also when a dataloader worker raised it
    (torch re-raises it in the main process with the worker's traceback as its message)."""
    text = str(e).strip().splitlines()[-1] if str(e).strip() else ''
    return text.split(f'{ImageDecodeError.__name__}: ', 1)[-1]


@DATASETS.register_module()
class CocoPersonDataset(CocoDataset):
    """mmpose's ``CocoDataset`` that keeps only annotations of the ``person`` category and
    logs how many of other categories it dropped (train.py's pre-flight refuses a file with
    no person annotation, and mixed files for testing: the COCO metric would count them)."""

    def _load_annotations(self):
        instances, images = super()._load_annotations()
        persons = {c['id'] for c in self.coco.dataset.get('categories', [])
                   if c.get('name') == 'person'}
        kept = [i for i in instances if int(i['category_id']) in persons]
        if len(kept) < len(instances):
            print_log(f'{self.ann_file}: using the {len(kept)} person annotations; dropped '
                      f'{len(instances) - len(kept)} of other categories', logger='current')
        return kept, images


@TRANSFORMS.register_module()
class CheckedLoadImage(LoadImage):
    """mmpose's ``LoadImage`` (same arguments) that raises :class:`ImageDecodeError` naming
    the image, or with ``skip_undecodable`` returns None (the training dataset then draws
    another sample) and logs the image and how many were skipped so far."""

    skipped = 0

    def __init__(self, skip_undecodable: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_undecodable = skip_undecodable

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return super().transform(results)
        except Exception as e:  # noqa: BLE001 - mmcv/cv2 fail in several ways
            image = results.get('img_path')
            # mmpose re-raises mmcv's error as the same type with its own words
            problem = 'is gone (no such file)' if isinstance(e, FileNotFoundError) else \
                UNDECODABLE
            if self.skip_undecodable:
                CheckedLoadImage.skipped += 1
                print_log(f'skipped {image}: {problem}; {CheckedLoadImage.skipped} images '
                          f'skipped so far', logger='current', level=logging.WARNING)
                return None
            raise ImageDecodeError(f'{image}: {problem}') from None


def leaf_datasets(node: Any, path: str = 'dataset') -> Iterator[Tuple[str, dict]]:
    """``(config key, dataset dict)`` of each dataset inside mmengine/mmpose wrappers
    (``dataset=`` or ``datasets=[...]``, lists of them); the one walker of the project."""
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from leaf_datasets(item, f'{path}[{i}]')
    elif isinstance(node, dict):
        if isinstance(node.get('dataset'), (dict, list, tuple)):
            yield from leaf_datasets(node['dataset'], f'{path}.dataset')
        elif isinstance(node.get('datasets'), (list, tuple)):
            for i, item in enumerate(node['datasets']):
                yield from leaf_datasets(item, f'{path}.datasets[{i}]')
        else:
            yield path, node


def use_checked_loading(cfg: Config, skip_undecodable: bool = False) -> Config:
    """Make ``cfg``'s datasets :class:`CocoPersonDataset` (for ``CocoDataset``) and their
    ``LoadImage`` :class:`CheckedLoadImage`; ``skip_undecodable`` for the training set only
    (a test set with an image left out is not the test set). In place; returned."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, dict):
            continue
        for _, dataset in leaf_datasets(loader.get('dataset')):
            if dataset.get('type') in ('CocoDataset', 'mmpose.CocoDataset', CocoDataset):
                dataset['type'] = 'CocoPersonDataset'
            for step in dataset.get('pipeline') or []:
                if isinstance(step, dict) and step.get('type') in (
                        'LoadImage', 'mmpose.LoadImage', LoadImage):
                    step['type'] = 'CheckedLoadImage'
                    if split == 'train' and skip_undecodable:
                        step['skip_undecodable'] = True
    return cfg
