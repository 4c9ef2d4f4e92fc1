"""Release a trained checkpoint: weights and plain metadata, named by its sha256.

``publish(IN, OUT)`` writes ``OUT-<sha256[:8]>_<YYYYMMDD>.pth`` (atomically) holding only
``state_dict`` and ``meta`` (config name, metrics, library versions, source), so it loads with
``torch.load(weights_only=True)``. :func:`load_published` refuses a file whose hash does not match
its name.
"""
import argparse
import datetime
import os
import re
import shutil
from typing import Dict, List, Optional, Tuple

import torch

from ..metrics import normalize_metrics
from ..utils import UserError, atomic_path, one_line_errors, read_json
from .ckptfile import (PUBLISHED, ChecksumError, load_checkpoint_file, sha256_of,  # noqa: F401
                       tensors_of, verify_published)

def publish(src: str, out: str, config: Optional[str] = None,
            metrics: Optional[Dict[str, float]] = None,
            date: Optional[str] = None) -> Tuple[str, dict]:
    """Write the release file for ``src``; return its path and the metadata it holds."""
    import mmengine
    import mmpose
    named = '(the training checkpoint to publish)'
    ckpt = load_checkpoint_file(src, named)
    state_dict = tensors_of(ckpt, src, named)
    old_meta = ckpt.get('meta') or {}
    if config is None and old_meta.get('experiment_name'):
        # mmengine names an experiment <config name>_<YYYYMMDD_HHMMSS>
        config = re.sub(r'_\d{8}_\d{6}$', '', old_meta['experiment_name'])
    meta = {
        'config': config,
        'metrics': dict(metrics or {}),
        'epoch': old_meta.get('epoch'),
        'iter': old_meta.get('iter'),
        'source': os.path.basename(src),
        'mmpose_version': str(mmpose.__version__),
        'mmengine_version': str(mmengine.__version__),
        'torch_version': str(torch.__version__),
    }
    release = {'state_dict': {k: v.detach().clone() for k, v in state_dict.items()},
               'meta': meta}
    date = date or datetime.date.today().strftime('%Y%m%d')
    out = out[:-4] if out.endswith('.pth') else out
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    # the name needs the hash of the finished file: write beside it, then rename
    tmp = os.path.join(folder, f'.{os.path.basename(out)}.tmp{os.getpid()}')
    try:
        torch.save(release, tmp)
        final = f'{out}-{sha256_of(tmp)[:8]}_{date}.pth'
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return final, meta


def load_published(path: str, map_location: str = 'cpu') -> dict:
    """Load a published checkpoint after checking its sha256 against its name."""
    if not PUBLISHED.search(os.path.basename(path)):
        raise UserError(f'{path}: not a published checkpoint name (<name>-<sha256[:8]>_<date>.pth)')
    if not os.path.isfile(path):
        raise UserError(f'{path}: no such file')
    verify_published(path)
    return torch.load(path, map_location=map_location, weights_only=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Release a checkpoint: weights + metadata, named OUT-<sha256[:8]>_<date>.pth')
    parser.add_argument('in_file', help='training checkpoint (e.g. work_dirs/x/epoch_210.pth)')
    parser.add_argument('out_file', help='output name without hash, e.g. releases/hrnet-w32-psa')
    parser.add_argument('--config', help='config name to record (default: from the checkpoint)')
    parser.add_argument('--metrics', help='metrics JSON from test.py --out (recorded and '
                        'added to the model zoo when the config is one of configs/)')
    parser.add_argument('--onnx', metavar='MODEL.onnx',
                        help='add this export (scripts/export_onnx.py) to the release, named '
                        'like the checkpoint, with its own sha256 in the metafile entry')
    parser.add_argument('--no-zoo', action='store_true',
                        help='do not add the entry to configs/results.json and the metafile')
    args = parser.parse_args(argv)
    with one_line_errors():
        metrics, config = {}, args.config
        if args.metrics:
            raw = read_json(args.metrics, 'metrics from test.py --out')
            config = config or raw.get('config')
            metrics = normalize_metrics(raw)
        if args.onnx:               # checked before anything is written
            from .export_onnx import read_exported
            onnx_config = read_exported(args.onnx)['config']
        path, meta = publish(args.in_file, args.out_file, config=config, metrics=metrics)
        print(f'published {path} (sha256 {sha256_of(path)})')
        config = meta['config']                 # as publish() settled it
        onnx = None
        if args.onnx:
            if config and onnx_config != config:
                print(f'warning: {args.onnx} was exported from {onnx_config}, the checkpoint '
                      f'says {config}')
            onnx = {'file': path[:-len('.pth')] + '.onnx'}
            with atomic_path(onnx['file']) as tmp:
                shutil.copyfile(args.onnx, tmp)
            onnx['sha256'] = sha256_of(onnx['file'])
            print(f'added {onnx["file"]} (sha256 {onnx["sha256"]})')
        if not args.no_zoo:
            from .. import zoo
            if config in zoo.config_files():
                zoo.add_trained(config, metrics, checkpoint=path, onnx=onnx)
                print(f'added {config} to {zoo.RESULTS_FILE} and {zoo.METAFILE}')
            else:
                families = ','.join(zoo.FAMILIES)
                print(f'{config!r} is not a COCO model-zoo config (configs/{{{families}}}/): '
                      f'model zoo unchanged')
    return 0
