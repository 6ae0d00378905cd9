"""``omnivad zxvad`` / ``jobs/zxvad.py``: train zxVAD on the source videos and score the unseen target."""

from __future__ import annotations

import argparse

from omnivad.cli_args import add_preset_arg


def add_zxvad_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="directory (or s3://) of source videos, normal only")
    p.add_argument("--target", required=True, help="directory (or s3://) of target test videos + annotations.txt")
    p.add_argument("--out", required=True, help="results/checkpoints URI")
    p.add_argument("--donors", help="task-irrelevant donor videos for the pseudo-anomalies (default: the source)")
    p.add_argument("--config", help="YAML/JSON config file")
    add_preset_arg(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set zxvad.frame_size=[64,64] (repeatable)")
    p.add_argument("--iterations", type=int, help="training iterations (zxvad.iterations)")
    p.add_argument("--workers", type=int, help="Ray Train workers")
    p.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per worker")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def zxvad_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.zxvad.zeroshot import run_zero_shot

    flags = {"zxvad.iterations": args.iterations, "scaling.workers": args.workers, "scaling.use_gpu": args.use_gpu,
             "storage.out": args.out}
    overrides = config.flag_overrides(flags)
    cfg = config.load(args.config, overrides + list(args.overrides), preset=getattr(args, "preset", None))
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    result = run_zero_shot(cfg, args.source, args.target, args.out, args.donors)
    print(result["table"])
    print(f"results: {result['results_uri']}")
    return 0
