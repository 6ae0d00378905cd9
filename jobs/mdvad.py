"""MDVAD job: `python jobs/mdvad.py [--protocol E1] [--method nullang-mil] [--ac] ...`.

With no arguments: an embedded local Ray, the demo synthetic corpus (made on first use), E1 with
NullAng-MIL + AC, and the results table. Works unchanged under
`ray job submit --working-dir . -- python jobs/mdvad.py`.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import omnivad  # noqa: F401
except ImportError:  # running from a checkout that is not installed (e.g. a Ray job's working dir)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))
    # Ray workers cannot import it either: ensure_ray ships the package with the job (py_modules).
    os.environ.setdefault("OMNIVAD_SHIP_PACKAGE", "1")

from omnivad.cli import add_run_args, run_main, shutdown_and_exit  # noqa: E402
from omnivad.errors import OmnivadError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(prog="jobs/mdvad.py", description=__doc__.splitlines()[0])
    add_run_args(parser)
    args = parser.parse_args()
    try:
        return run_main(args)
    except (OmnivadError, FileNotFoundError, ValueError) as exc:
        print(f"mdvad: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    shutdown_and_exit(main())
