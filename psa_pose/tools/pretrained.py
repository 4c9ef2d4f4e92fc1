"""``scripts/fetch_pretrained.sh``: download the pretrained weights the configs name into the local cache
(see :mod:`psa_pose.engine.pretrained`)."""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from ..engine.pretrained import cache_path, config_urls, fetch
from ..utils import one_line_errors


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
