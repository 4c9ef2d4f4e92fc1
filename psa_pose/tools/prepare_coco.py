"""``scripts/prepare_coco.sh``: download, check and unpack COCO (see :mod:`psa_pose.data.prepare_coco`)."""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from ..data.prepare_coco import ARCHIVES, prepare, read_manifest
from ..utils import UserError, one_line_errors


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='scripts/prepare_coco.sh',
        description='Download (or take from --from), verify and unpack COCO 2017 person '
        'keypoints into the layout the configs read')
    parser.add_argument('data_dir', metavar='DATA_DIR', help='the data root, e.g. data/coco')
    parser.add_argument('--from', dest='from_dir', metavar='DIR',
                        help='a folder with the archives (and the detection file) downloaded '
                        'already')
    parser.add_argument('--manifest', metavar='JSON',
                        help='override URLs, sizes or sha256 per archive (a mirror)')
    parser.add_argument('--no-detections', action='store_true',
                        help='do not require the person detection file')
    args = parser.parse_args(argv)
    with one_line_errors():
        if args.from_dir and not osp.isdir(args.from_dir):
            raise UserError(f'{args.from_dir}: no such folder (--from)')
        archives = read_manifest(args.manifest) if args.manifest else ARCHIVES
        prepare(args.data_dir, args.from_dir, archives, not args.no_detections,
                say=lambda line: print(line, flush=True))
    print(f'COCO ready in {osp.abspath(args.data_dir)}; check a config with: '
          f'python scripts/train.py CONFIG --check')
    return 0


if __name__ == '__main__':
    sys.exit(main())
