"""Time, memory, parameters and FLOPs of PSA models against mmpose's baselines.

    python scripts/benchmark.py --out work_dirs/benchmark.json     # the README's table
    python scripts/benchmark.py --quick                            # smoke run

See ``psa_pose/benchmark.py`` for what is measured and how; ``--help`` for the options.
"""
import os
import sys

# run the checkout's package, not whichever psa_pose happens to be installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from psa_pose.tools.benchmark import main  # noqa: E402

if __name__ == '__main__':
    main()
