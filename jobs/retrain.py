"""Scheduled retraining of the registry's model (jobs/retrain.py --corpus URI --out URI [--tolerance 1.0]).

Adds heads for corpus domains the registry's current model lacks, warm-starts from it, trains on every
domain (E1 split, fold 0), and promotes the new version only if no existing domain's test AUC drops by
more than --tolerance AUC points; with nothing new it prints "nothing new" and changes nothing.
Once per call (the CronJob's schedule), or in a loop with --every DURATION (e.g. 6h) until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import os
import sys

try:
    import omnivad  # noqa: F401
except ImportError:  # running from a checkout that is not installed (e.g. a Ray job's working dir)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))
    os.environ.setdefault("OMNIVAD_SHIP_PACKAGE", "1")

from omnivad.cli import job_main, shutdown_and_exit  # noqa: E402
from omnivad.registry import add_retrain_args, retrain_main  # noqa: E402


def main() -> int:
    return job_main("jobs/retrain.py", __doc__, add_retrain_args, retrain_main)


if __name__ == "__main__":
    shutdown_and_exit(main())
