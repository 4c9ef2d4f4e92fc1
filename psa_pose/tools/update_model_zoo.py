"""Re-measure params/GFLOPs of every config into configs/results.json and re-render
configs/README.md's model-zoo tables and configs/metafile.yml from it.

    python scripts/update_model_zoo.py            # measure, write results, render pages
    python scripts/update_model_zoo.py --render   # render pages from results.json only
    python scripts/update_model_zoo.py --check    # exit 1 if anything is stale; writes nothing
"""
import argparse
import os
from typing import List, Optional

from .. import zoo


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; exit code 1 from ``--check`` when something is stale."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--render', action='store_true', help='only re-render the pages')
    group.add_argument('--check', action='store_true', help='only check; write nothing')
    args = parser.parse_args(argv)

    results = zoo.read_results() if os.path.exists(zoo.RESULTS_FILE) else {}
    if not args.render:
        measured = zoo.measure_all()
        stale = sorted(n for n in measured if {k: results.get(n, {}).get(k)
                                               for k in measured[n]} != measured[n])
        stale += sorted(set(results) - set(measured))
        if args.check:
            pages = zoo.stale_pages({**results, **{n: {**results.get(n, {}), **m}
                                                   for n, m in measured.items()}})
            for item in stale + pages:
                print(f'stale: {item}')
            if stale or pages:
                print('run: python scripts/update_model_zoo.py')
                return 1
            print('model zoo is up to date')
            return 0
        results = {n: {**results.get(n, {}), **m} for n, m in measured.items()}
        zoo.write_results(results)
        print(f'wrote {zoo.RESULTS_FILE} ({len(stale)} configs changed)')
    zoo.write_pages(results)
    print(f'wrote {zoo.ZOO_README} and {zoo.METAFILE}')
    return 0
