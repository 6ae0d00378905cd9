"""zxVAD zero-shot cross-domain job: `python jobs/zxvad.py --source URI --target URI --out URI`.

Trains zxVAD (spec ../shared/specs/zxvad.md) on the source videos (normal only) on Ray Train, then
scores the never-seen target test videos (frame-level AUC from annotations.txt). Resumes from its
latest checkpoint when rerun with the same inputs.
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
    p.add_argument("--source", required=True, help="directory (or s3://) of source videos, normal only")
    p.add_argument("--target", required=True, help="directory (or s3://) of target test videos + annotations.txt")
    p.add_argument("--out", required=True, help="results/checkpoints URI")
    p.add_argument("--donors", help="task-irrelevant donor videos for the pseudo-anomalies (default: the source)")
    p.add_argument("--config", help="YAML/JSON config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set zxvad.frame_size=[64,64] (repeatable)")
    p.add_argument("--iterations", type=int, help="training iterations (zxvad.iterations)")
    p.add_argument("--workers", type=int, help="Ray Train workers")
    p.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per worker")
    p.add_argument("--print-config", action="store_true")


def run(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.zxvad.zeroshot import run_zero_shot

    flags = {"zxvad.iterations": args.iterations, "scaling.workers": args.workers, "scaling.use_gpu": args.use_gpu,
             "storage.out": args.out}
    overrides = config.flag_overrides(flags)
    cfg = config.load(args.config, overrides + list(args.overrides))
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    result = run_zero_shot(cfg, args.source, args.target, args.out, args.donors)
    print(result["table"])
    print(f"results: {result['results_uri']}")
    return 0


def main() -> int:
    return job_main("jobs/zxvad.py", __doc__, add_args, run)


if __name__ == "__main__":
    shutdown_and_exit(main())
