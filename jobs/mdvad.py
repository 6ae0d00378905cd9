"""MDVAD job: `python jobs/mdvad.py [--protocol E1] [--method nullang-mil] [--ac] ...`.

`--methods mil,mmil,bn-wvad,nullang-mil@bn-wvad` runs the protocol once per entry and writes the Table 10
comparison (table10.json/md).

With no arguments: an embedded local Ray, the demo synthetic corpus (made on first use), E1 with
NullAng-MIL + AC, and the results table. Works unchanged under
`ray job submit --working-dir . -- python jobs/mdvad.py`.
"""

from __future__ import annotations

import os
import sys

try:
    import omnivad  # noqa: F401
except ImportError:  # running from a checkout that is not installed (e.g. a Ray job's working dir)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "platform"))
    # Ray workers cannot import it either: ensure_ray ships the package with the job (py_modules).
    os.environ.setdefault("OMNIVAD_SHIP_PACKAGE", "1")

from omnivad.cli import add_run_args, job_main, run_main, shutdown_and_exit  # noqa: E402


def main() -> int:
    return job_main("jobs/mdvad.py", __doc__, add_run_args, run_main)


if __name__ == "__main__":
    shutdown_and_exit(main())
