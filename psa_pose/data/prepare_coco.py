"""COCO 2017 person keypoints in the layout the configs read (``data_root='data/coco/'``)::

    DATA_DIR/annotations/person_keypoints_train2017.json
    DATA_DIR/annotations/person_keypoints_val2017.json
    DATA_DIR/train2017/000000000009.jpg ...
    DATA_DIR/val2017/000000000139.jpg ...
    DATA_DIR/person_detection_results/COCO_val2017_detections_AP_H_56_person.json

Each archive is taken from ``--from DIR`` when it is there, else downloaded (into
``DATA_DIR/.downloads``; an interrupted download is never taken for a whole one), checked
against its recorded size and sha256, and unpacked into a temporary folder inside DATA_DIR that
is renamed into place only once everything in it was read back without error: a wrong checksum
or a cut-short archive gets one line and leaves nothing half-unpacked. What is already in place
is left alone. The detection file (HRNet's, which mmpose's configs use) has no download URL a
script can use; it is copied from ``--from DIR``.
"""
import os
import os.path as osp
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

from ..utils import UserError, atomic_path, download, read_json, sha256_of

DETECTIONS = 'person_detection_results/COCO_val2017_detections_AP_H_56_person.json'
DETECTIONS_SOURCE = ('HRNet\'s release (github.com/leoxiaobin/deep-high-resolution-net.pytorch: '
                     'OneDrive or Google Drive, "person_detection_results"), as mmpose\'s docs '
                     'say')


@dataclass(frozen=True)
class Archive:
    """One download: where from, its recorded size and sha256, and what it puts in place
    (``members``: archive paths -> paths under DATA_DIR; a path ending in '/' is a folder)."""
    name: str
    url: str
    size: Optional[int]
    sha256: Optional[str]
    members: Tuple[Tuple[str, str], ...]


# Sizes and sha256 as published for these URLs (e.g. by TensorFlow Datasets' COCO checksums);
# cocodataset.org itself publishes none.
ARCHIVES: Tuple[Archive, ...] = (
    Archive('annotations_trainval2017.zip',
            'http://images.cocodataset.org/annotations/annotations_trainval2017.zip',
            252_907_541, '113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268',
            (('annotations/person_keypoints_train2017.json',
              'annotations/person_keypoints_train2017.json'),
             ('annotations/person_keypoints_val2017.json',
              'annotations/person_keypoints_val2017.json'))),
    Archive('val2017.zip', 'http://images.cocodataset.org/zips/val2017.zip',
            815_585_330, '4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05',
            (('val2017/', 'val2017/'),)),
    Archive('train2017.zip', 'http://images.cocodataset.org/zips/train2017.zip',
            19_336_861_798, '69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929',
            (('train2017/', 'train2017/'),)),
)


def _in_place(data_dir: str, archive: Archive) -> bool:
    return all(osp.isdir(osp.join(data_dir, t)) if t.endswith('/') else
               osp.isfile(osp.join(data_dir, t)) for _, t in archive.members)


def _find(archive: Archive, data_dir: str, from_dir: Optional[str], say) -> str:
    """The archive's local file: from --from DIR, an earlier download, or downloaded now."""
    if from_dir and osp.isfile(osp.join(from_dir, archive.name)):
        return osp.join(from_dir, archive.name)
    path = osp.join(data_dir, '.downloads', archive.name)
    if not osp.isfile(path):
        say(f'downloading {archive.url}')
        # the hash is checked as the bytes arrive; verify() checks it again for every source
        download(archive.url, path, archive.sha256, progress=True,
                 fix=f'download it by hand and rerun with --from DIR (the folder holding '
                     f'{archive.name})')
    return path


def verify(path: str, archive: Archive, say) -> None:
    """Size, then sha256, against the recorded values (one line when they differ)."""
    size = osp.getsize(path)
    if archive.size is not None and size != archive.size:
        raise UserError(f'{path}: {size} bytes, {archive.name} has {archive.size} (a partial '
                        f'or different download); delete it and download it again')
    if archive.sha256 is None:
        say(f'{archive.name}: no recorded sha256, not verified')
        return
    total = max(size, 1)
    step = [0]

    def progress(done: int) -> None:
        if done * 10 // total > step[0]:
            step[0] = done * 10 // total
            say(f'  sha256 {archive.name}: {step[0] * 10}%')
    digest = sha256_of(path, progress if size > 1 << 28 else None)
    if digest != archive.sha256:
        raise UserError(f'{path}: sha256 {digest[:16]}..., {archive.name} should have '
                        f'{archive.sha256[:16]}...; the file is corrupt or another file: '
                        f'delete it and download it again')


def unpack(path: str, archive: Archive, data_dir: str, say) -> None:
    """Extract the archive's members into a temporary folder in ``data_dir``, then rename each
    into place; on any error nothing of it is left."""
    tmp = tempfile.mkdtemp(prefix=f'.{archive.name}.', suffix='.partial', dir=data_dir)
    try:
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                for src, _ in archive.members:
                    chosen = [n for n in names if (n.startswith(src) if src.endswith('/')
                                                   else n == src)]
                    if not chosen:
                        raise UserError(f'{path}: has no {src}; it is not {archive.name} from '
                                        f'{archive.url}')
                    for n in chosen:
                        if osp.isabs(n) or '..' in n.split('/'):
                            raise UserError(f'{path}: member {n} points outside the folder; '
                                            f'not a COCO archive')
                        zf.extract(n, tmp)   # reads and CRC-checks every byte
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
            raise UserError(f'{path}: not a complete zip archive ({e}); delete it and download '
                            f'it again') from None
        for src, target in archive.members:
            dest = osp.join(data_dir, target.rstrip('/'))
            if osp.exists(dest):
                continue
            os.makedirs(osp.dirname(dest), exist_ok=True)
            os.replace(osp.join(tmp, src.rstrip('/')), dest)
        say(f'unpacked {archive.name} into {data_dir}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(data_dir: str, from_dir: Optional[str] = None,
            archives: Sequence[Archive] = ARCHIVES, detections: bool = True,
            say=print) -> List[str]:
    """Bring ``data_dir`` into the layout; returns what was done, one line each."""
    data_dir = osp.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    done = []
    for archive in archives:
        if _in_place(data_dir, archive):
            done.append(f'{archive.name}: already in place')
            say(done[-1])
            continue
        path = _find(archive, data_dir, from_dir, say)
        verify(path, archive, say)
        unpack(path, archive, data_dir, say)
        done.append(f'{archive.name}: unpacked')
    if detections:
        dest = osp.join(data_dir, DETECTIONS)
        source = osp.join(from_dir, osp.basename(DETECTIONS)) if from_dir else None
        if osp.isfile(dest):
            done.append(f'{osp.basename(DETECTIONS)}: already in place')
        elif source and osp.isfile(source):
            _check_detections(source)
            with atomic_path(dest) as tmp:
                shutil.copyfile(source, tmp)
            done.append(f'{osp.basename(DETECTIONS)}: copied from {from_dir}')
        else:
            raise UserError(f'{dest}: missing; get {osp.basename(DETECTIONS)} from '
                            f'{DETECTIONS_SOURCE}, and rerun with --from DIR (the folder '
                            f'holding it), or pass --no-detections to test with GT boxes only')
        say(done[-1])
    check_layout(data_dir, archives)
    return done


def check_layout(data_dir: str, archives: Sequence[Archive] = ARCHIVES) -> None:
    """What is in place, unpacked now or before, read back: each keypoints annotation file
    parses as COCO person keypoints, and every image it names is in its split's folder (where
    that folder is among ``archives``). A one-line :class:`UserError` naming the file and what
    to do otherwise, never "ready" for a layout a run would fail on hours later."""
    from .cocofile import read_coco_keypoints
    folders = {t.rstrip('/') for a in archives for _, t in a.members if t.endswith('/')}
    for archive in archives:
        for _, target in archive.members:
            name = osp.basename(target)
            if not (name.startswith('person_keypoints_') and name.endswith('.json')):
                continue
            ann = osp.join(data_dir, target)
            fix = (f'delete it and run prepare_coco again to unpack {archive.name} afresh '
                   f'(a cut-short or wrong archive?)')
            gt = read_coco_keypoints(ann, fix)
            split = name[len('person_keypoints_'):-len('.json')]
            if split not in folders:
                continue
            folder = osp.join(data_dir, split)
            present = set(os.listdir(folder)) if osp.isdir(folder) else set()
            missing = [im['file_name'] for im in gt['images']
                       if osp.basename(im['file_name']) not in present]
            if missing:
                raise UserError(f'{folder}: {len(missing)} of the {len(gt["images"])} images '
                                f'{ann} names are missing (first: {missing[0]}); delete '
                                f'{folder} and run prepare_coco again to unpack {split}.zip '
                                f'afresh')


def _check_detections(path: str) -> None:
    dets = read_json(path, 'the COCO val2017 person detections')
    if not isinstance(dets, list) or not dets or not all(
            isinstance(d, dict) and {'image_id', 'bbox', 'score'} <= set(d) for d in dets[:100]):
        raise UserError(f'{path}: not a list of detections {{"image_id", "bbox", "score"}}; '
                        f'expected the COCO val2017 person detections')


def read_manifest(path: str) -> Tuple[Archive, ...]:
    """The archives with the fields a JSON file ``{name: {url, size, sha256}}`` overrides
    (a mirror's URLs, or the test's made-up archives)."""
    data = read_json(path, 'a JSON object {archive name: {"url", "size", "sha256"}}')
    if not isinstance(data, dict):
        raise UserError(f'{path}: not a JSON object of archive names')
    known = {a.name: a for a in ARCHIVES}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f'{path}: unknown archive {unknown[0]}; the archives are '
                        f'{", ".join(known)}')
    return tuple(replace(a, **{k: v for k, v in data.get(a.name, {}).items()
                               if k in ('url', 'size', 'sha256')}) for a in ARCHIVES)
