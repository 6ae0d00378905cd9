"""Hyperparameter search: `python jobs/tune.py [--objective E1|E2|both] [--trials N] [--resume] ...`.

A Ray Tune search (Optuna TPE, seeded; ASHA early stopping) over the shared trainer for any method: each
trial is a Ray Train run (or one per held-out target for E2) scored on validation splits only. Writes
trials.csv/md, best_config.yaml (ready for jobs/mdvad.py --config), the Pareto front for `--objective both`,
and best_test.json (the chosen config(s) tested once) under <out>/<tune.name>/. `--resume` continues a search
whose driver died. Same config flags as jobs/mdvad.py; the search section is `tune.*`.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import omnivad  # noqa: F401
except ImportError:  # running from a checkout that is not installed (e.g. a Ray job's working dir)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))
    os.environ.setdefault("OMNIVAD_SHIP_PACKAGE", "1")

from omnivad.cli import job_main, shutdown_and_exit  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    from omnivad.tune.cli import add_tune_args

    add_tune_args(p)


def run(args: argparse.Namespace) -> int:
    from omnivad.tune.cli import tune_main

    return tune_main(args)


if __name__ == "__main__":
    shutdown_and_exit(job_main("jobs/tune.py", __doc__, add_args, run))
