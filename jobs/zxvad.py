"""zxVAD zero-shot cross-domain job: `python jobs/zxvad.py --source URI --target URI --out URI`.

Trains zxVAD (spec ../shared/specs/zxvad.md) on the source videos (normal only) on Ray Train, then
scores the never-seen target test videos (frame-level AUC from annotations.txt). Resumes from its
latest checkpoint when rerun with the same inputs.
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
from omnivad.zxvad.cli import add_zxvad_args, zxvad_main  # noqa: E402


def main() -> int:
    return job_main("jobs/zxvad.py", __doc__, add_zxvad_args, zxvad_main)


if __name__ == "__main__":
    shutdown_and_exit(main())
