"""Feature extraction job: `python jobs/extract.py --videos DIR --out CORPUS --domain D --split test ...`.

Decodes every video under --videos (local or s3://) on Ray Data, samples 16-frame snippets, crops them
(ten-crop or centre), runs the 3D-CNN backbone on an actor pool (GPU actors when the cluster has GPUs),
and writes the snippet features, labels and frame-level ground truth into the corpus at --out.
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
from omnivad.video.cli import add_extract_args, extract_main  # noqa: E402


def main() -> int:
    return job_main("jobs/extract.py", __doc__, add_extract_args, extract_main)


if __name__ == "__main__":
    shutdown_and_exit(main())
