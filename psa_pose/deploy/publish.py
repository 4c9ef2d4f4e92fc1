"""Release a trained checkpoint: weights and plain metadata, named by its sha256.

``publish(IN, OUT)`` writes ``OUT-<sha256[:8]>_<YYYYMMDD>.pth`` (atomically) holding only
``state_dict`` and ``meta`` (config name, metrics, library versions, source), so it loads with
``torch.load(weights_only=True)``. :func:`load_published` refuses a file whose hash does not match
its name.
"""
import datetime
import os
import re
import shutil
from typing import Any, Dict, Optional, Tuple

import torch

from ..evaluation.metrics import normalize_metrics
from ..models.checkpoint import (PUBLISHED, check_fit, load_checkpoint_file, load_weights_only,
                                 tensors_of, verify_published)
from ..utils import UserError, atomic_path, read_json, sha256_of

NAMED = '(the training checkpoint to publish)'


def trained_config(ckpt: Any) -> Optional[str]:
    """The config name a training checkpoint was saved under, from mmengine's experiment name
    (``<config name>_<YYYYMMDD_HHMMSS>``), or None."""
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    name = meta.get('experiment_name') if isinstance(meta, dict) else None
    return re.sub(r'_\d{8}_\d{6}$', '', name) if isinstance(name, str) else None


def config_file(config: str) -> str:
    """The file of ``config``: a path, a model-zoo config name or one of mmpose's; else one
    :class:`UserError` line."""
    from ..config import config_files, mmpose_config_file
    if os.path.isfile(config):
        return config
    if config in config_files():
        return config_files()[config]
    try:
        return mmpose_config_file(config)
    except FileNotFoundError:
        raise UserError(f'{config}: no such config file or model-zoo config; give --config '
                        f'the config file the checkpoint was trained with') from None


def check_metrics(raw: Dict, metrics_file: str, checkpoint: str, config: str) -> None:
    """That ``metrics_file`` (``raw``) measured ``checkpoint`` (its sha256, as test.py --out
    records it) on ``config`` (its name); else one :class:`UserError` line."""
    sha = raw.get('checkpoint_sha256')
    if not isinstance(sha, str):
        raise UserError(f'{metrics_file}: does not say which checkpoint it measured (no '
                        f'checkpoint_sha256); give the metrics file that scripts/test.py CONFIG '
                        f'CKPT --out wrote for this checkpoint')
    own = sha256_of(checkpoint)
    if sha != own:
        raise UserError(f'{metrics_file}: measured another checkpoint (sha256 {sha[:8]}, '
                        f'{checkpoint} has {own[:8]}); publish the checkpoint it measured, or '
                        f'test this one with scripts/test.py --out')
    name = os.path.splitext(os.path.basename(config))[0]
    if raw.get('config') != name:
        raise UserError(f'{metrics_file}: measured the checkpoint with config '
                        f'{raw.get("config")!r}, not {name!r}; give --config the config it was '
                        f'tested with, or test it again with this one')


def publish(src: str, out: str, config: Optional[str] = None,
            metrics: Optional[Dict[str, float]] = None,
            date: Optional[str] = None) -> Tuple[str, dict]:
    """Write the release file for ``src``; return its path and the metadata it holds."""
    import mmengine
    import mmpose
    ckpt = load_checkpoint_file(src, NAMED)
    state_dict = tensors_of(ckpt, src, NAMED)
    old_meta = ckpt.get('meta') or {}
    config = config or trained_config(ckpt)
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
    return load_weights_only(path, map_location=map_location)


def release(in_file: str, out_file: str, config_arg: Optional[str] = None,
            metrics_file: Optional[str] = None, onnx_file: Optional[str] = None,
            zoo_entry: bool = True) -> str:
    """``scripts/publish_model.py``: check everything (the checkpoint reads and fits its
    config, the metrics are this checkpoint's, the ONNX export is of the same config), then
    write the release (and its ONNX file) and add it to the model zoo; returns the release's
    path. A refused call leaves the release folder and the model zoo as they were."""
    verify_published(in_file)          # a file named like a release
    ckpt = load_checkpoint_file(in_file, NAMED)
    state_dict = tensors_of(ckpt, in_file, NAMED)
    raw = read_json(metrics_file, 'metrics from test.py --out') if metrics_file else {}
    recorded = raw.get('config_file') if isinstance(raw.get('config_file'), str) and \
        os.path.isfile(raw['config_file']) else raw.get('config')
    config = config_arg or recorded or trained_config(ckpt)
    metrics = normalize_metrics(raw)
    if config:
        from ..config import build_model, load_config
        path = config_file(config)
        check_fit(build_model(load_config(path)), state_dict, in_file, path,
                  'give --config the config it was trained with')
        config = os.path.splitext(os.path.basename(path))[0]
        if metrics_file:
            check_metrics(raw, metrics_file, in_file, config)
    elif metrics_file:
        check_metrics(raw, metrics_file, in_file, '')
    if onnx_file:
        from .export import read_exported
        onnx_config = read_exported(onnx_file)['config']
        if config and onnx_config != config:
            raise UserError(f'{onnx_file}: was exported from {onnx_config}, the checkpoint '
                            f'is of {config}; export this checkpoint with '
                            f'scripts/export_onnx.py')
    path, meta = publish(in_file, out_file, config=config, metrics=metrics)
    print(f'published {path} (sha256 {sha256_of(path)})')
    config = meta['config']                 # as publish() settled it
    onnx = None
    if onnx_file:
        onnx = {'file': path[:-len('.pth')] + '.onnx'}
        with atomic_path(onnx['file']) as tmp:
            shutil.copyfile(onnx_file, tmp)
        onnx['sha256'] = sha256_of(onnx['file'])
        print(f'added {onnx["file"]} (sha256 {onnx["sha256"]})')
    if not not zoo_entry:
        from .. import zoo
        from ..config import FAMILIES, config_files
        if config in config_files():
            zoo.add_trained(config, metrics, checkpoint=path, onnx=onnx)
            print(f'added {config} to {zoo.RESULTS_FILE} and {zoo.METAFILE}')
        else:
            families = ','.join(FAMILIES)
            print(f'{config!r} is not a COCO model-zoo config (configs/{{{families}}}/): '
                  f'model zoo unchanged')
    return path
