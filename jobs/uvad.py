"""Unsupervised VAD job: `python jobs/uvad.py [--occ ae|flow|stg-nf] [--ws rtfm|mdvad] [--q 0.15] ...`.

Trains with no labels at all by interleaving a weighted one-class model and a weakly-supervised model
(spec wocc_ws.md), one run per domain with its own adaptive thresholds, and writes per-loop and
per-module records (results.json) and the module table (results.md). With no --corpus/--config: the
synthetic demo corpus and a short demo profile. Rerunning the same command resumes at the last
finished loop.
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
    from omnivad.uvad.runner import add_uvad_args

    add_uvad_args(p)


def run(args: argparse.Namespace) -> int:
    from omnivad.uvad.runner import uvad_main

    return uvad_main(args)


if __name__ == "__main__":
    shutdown_and_exit(job_main("jobs/uvad.py", __doc__, add_args, run))
