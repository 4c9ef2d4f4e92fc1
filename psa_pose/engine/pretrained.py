"""Pretrained ImageNet weights the configs name, and the local cache mmengine reads them from.

mmengine loads ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` with
``torch.hub.load_state_dict_from_url``, which keeps the file as
``<torch hub dir>/checkpoints/<basename of the URL>`` ($TORCH_HOME/hub, ~/.cache/torch/hub by
default) and reads it from there without the network when it is present; ``torchvision://NAME``
is first mapped to torchvision's URL for NAME. So a node without internet trains a config
once that file is in its cache: ``scripts/fetch_pretrained.sh`` puts it there, from the URL or
from a mirror (``--source``: a folder or base URL holding the same file names, e.g.
``file:///shared/weights``).
"""
import os.path as osp
from typing import Dict, Iterable, List, Optional, Tuple

from mmengine.config import Config

from ..utils import UserError, download


def resolve_url(source: str) -> Optional[str]:
    """The http(s) URL mmengine downloads ``source`` from (``torchvision://``, ``mmcls://`` and
    ``open-mmlab://`` names mapped by mmengine's own tables), or None for a local path or
    another scheme."""
    from mmengine.runner import checkpoint as ck
    tables = {'torchvision://': (ck.get_torchvision_models, 'resnet50, resnet101, resnet152'),
              'mmcls://': (ck.get_mmcls_models, 'resnet50_v1d, resnext50_32x4d'),
              'open-mmlab://': (ck.get_external_models, 'vgg16_caffe')}
    for scheme, (table, examples) in tables.items():
        if source.startswith(scheme):
            name = source[len(scheme):]
            urls = table()
            if name not in urls:
                raise UserError(f'{source}: mmengine knows no such model weights; use one of '
                                f'{examples}, ...')
            return urls[name]
    if source.startswith(('http://', 'https://')):
        return source
    return None


def cache_dir() -> str:
    """Where torch.hub (and so mmengine) keeps downloaded checkpoints."""
    import torch.hub
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def cache_path(url: str) -> str:
    return osp.join(cache_dir(), osp.basename(url.split('?')[0]))


def pretrained_inits(cfg: Config, config: str) -> List[Tuple[str, str, dict]]:
    """``(config key, model part, init_cfg)`` of every ``Pretrained`` init_cfg of the model and
    its parts (what training loads before the first step; the one walker of the project). An
    empty checkpoint is one :class:`UserError` line naming ``config`` and the key."""
    from ..configcheck import model_parts, module_of
    found = []
    for path, part in [('model', cfg.get('model') or {})] + list(model_parts(cfg)):
        inits = part.get('init_cfg')
        inits = inits if isinstance(inits, (list, tuple)) else [inits]
        for i, init in enumerate(inits):
            if not (isinstance(init, dict) and init.get('type') == 'Pretrained'):
                continue
            where = f'{path}.init_cfg' + (f'[{i}]' if len(inits) > 1 else '') + '.checkpoint'
            if not init.get('checkpoint'):
                raise UserError(f'{config}: {where} is not set; give the pretrained weights or '
                                f'set {path}.init_cfg=None')
            found.append((where, module_of(path), init))
    return found


def pretrained_sources(cfg: Config, config: str) -> List[Tuple[str, str]]:
    """``(config key, checkpoint)`` of every ``Pretrained`` init_cfg (:func:`pretrained_inits`)."""
    return [(where, init['checkpoint']) for where, _, init in pretrained_inits(cfg, config)]


def describe(source: str) -> str:
    """One line: the checkpoint, and whether a run on this machine finds it without the
    network."""
    url = resolve_url(source)
    if url is None:
        state = 'present' if osp.isfile(osp.expanduser(source)) else 'MISSING'
        return f'{source} (local file, {state})'
    path = cache_path(url)
    state = 'in the local cache' if osp.isfile(path) else \
        'NOT in the local cache: the run downloads it (scripts/fetch_pretrained.sh)'
    return f'{source} -> {path} ({state})'


def config_urls(configs: Iterable[str]) -> Dict[str, List[str]]:
    """URL -> the configs that name it, for the given config files."""
    from ..config import load_config
    urls: Dict[str, List[str]] = {}
    for config in configs:
        for _, source in pretrained_sources(load_config(config), config):
            url = resolve_url(source)
            if url:
                urls.setdefault(url, []).append(osp.basename(config))
    return urls


def fetch(url: str, source: Optional[str] = None) -> Tuple[str, bool]:
    """Put ``url``'s file into the cache (from ``source``, a folder or base URL with the same
    file name, when given); returns (path, whether it was fetched now). Written to a
    temporary name and renamed (:func:`~psa_pose.utils.download`): an interrupted download
    leaves nothing under the final name."""
    path = cache_path(url)
    if osp.isfile(path):
        return path, False
    name = osp.basename(path)
    if source:
        origin = source if '://' in source else 'file://' + osp.abspath(source)
        origin = origin.rstrip('/') + '/' + name
    else:
        origin = url
    download(origin, path, fix=f'check the network or --source, or copy {name} into '
                               f'{osp.dirname(path)}')
    return path, True
