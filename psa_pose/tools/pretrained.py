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
import argparse
import os
import os.path as osp
import shutil
import sys
import urllib.request
from typing import Dict, Iterable, List, Optional, Tuple

from mmengine.config import Config

from ..configcheck import model_parts
from ..utils import UserError, atomic_path, one_line_errors


def resolve_url(source: str) -> Optional[str]:
    """The http(s) URL mmengine downloads ``source`` from (``torchvision://resnet50`` mapped
    as mmengine maps it), or None for a local path or another scheme."""
    if source.startswith('torchvision://'):
        from mmengine.runner.checkpoint import get_torchvision_models
        name = source[len('torchvision://'):]
        urls = get_torchvision_models()
        if name not in urls:
            raise UserError(f'{source}: torchvision has no such model weights; use one of '
                            f'resnet50, resnet101, resnet152, ...')
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


def pretrained_sources(cfg: Config) -> List[Tuple[str, str]]:
    """``(config key, checkpoint)`` of every ``Pretrained`` init_cfg of the model and its
    parts (what training loads before the first step)."""
    found = []
    parts = [('model', cfg.get('model') or {})] + list(model_parts(cfg))
    for path, part in parts:
        inits = part.get('init_cfg')
        for i, init in enumerate(inits if isinstance(inits, (list, tuple)) else [inits]):
            if isinstance(init, dict) and init.get('type') == 'Pretrained' \
                    and init.get('checkpoint'):
                found.append((f'{path}.init_cfg.checkpoint', init['checkpoint']))
    return found


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
        for _, source in pretrained_sources(load_config(config)):
            url = resolve_url(source)
            if url:
                urls.setdefault(url, []).append(osp.basename(config))
    return urls


def fetch(url: str, source: Optional[str] = None) -> Tuple[str, bool]:
    """Put ``url``'s file into the cache (from ``source``, a folder or base URL with the same
    file name, when given); returns (path, whether it was fetched now). Written to a
    temporary name and renamed: an interrupted download leaves nothing under the final name."""
    path = cache_path(url)
    if osp.isfile(path):
        return path, False
    name = osp.basename(path)
    if source:
        origin = source if '://' in source else 'file://' + osp.abspath(source)
        origin = origin.rstrip('/') + '/' + name
    else:
        origin = url
    try:
        with urllib.request.urlopen(origin, timeout=60) as response, \
                atomic_path(path) as tmp, open(tmp, 'wb') as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except OSError as e:             # URLError, HTTPError, a missing file:// file
        raise UserError(f'{origin}: cannot be fetched ({e}); check the network or --source, '
                        f'or copy {name} into {osp.dirname(path)}') from None
    return path, True


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Put the pretrained weights the configs name into the local torch hub '
        'cache, where mmengine finds them without the network')
    parser.add_argument('configs', nargs='*', help='config files (default: every config in '
                        'configs/hrnet and configs/resnet)')
    parser.add_argument('--source', help='a folder or base URL (file://, http://) with the '
                        'same file names, instead of the original URLs')
    parser.add_argument('--list', action='store_true',
                        help='only print each URL, its cache file and whether it is there')
    args = parser.parse_args(argv)
    from ..config import config_files
    with one_line_errors():
        configs = args.configs or sorted(config_files().values())
        urls = config_urls(configs)
        for url in sorted(urls):
            if args.list:
                there = 'present' if osp.isfile(cache_path(url)) else 'missing'
                print(f'{url} -> {cache_path(url)} ({there}; {len(urls[url])} configs)')
                continue
            path, fetched = fetch(url, args.source)
            print(f'{"fetched" if fetched else "already there"}: {path} '
                  f'({os.path.getsize(path)} bytes; {len(urls[url])} configs)')
            sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
