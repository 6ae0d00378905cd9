"""The flags every training job shares (``omnivad run``, jobs/mdvad.py, tune, retrain) and the logging flags of
every job; their own module so the job packages can import them without importing :mod:`omnivad.cli`."""

from __future__ import annotations

import argparse
from typing import Any


def add_preset_arg(p: argparse.ArgumentParser) -> None:
    """``--preset NAME``: a shipped preset (``omnivad config presets``), between the defaults and ``--config``."""
    from omnivad.presets import list_presets

    p.add_argument("--preset", metavar="NAME",
                   help=f"a shipped config preset ({', '.join(list_presets())}); precedence: defaults < preset < "
                        "--config < --set and flags")


def wants_demo(args: argparse.Namespace) -> bool:
    """The demo profile applies when nothing names a config or a corpus (no --config, --preset, --corpus or
    corpus.uri override)."""
    return not (args.config or getattr(args, "preset", None) or args.corpus
                or any(o.startswith("corpus.uri=") for o in args.overrides))


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML/JSON config file (gives the paper's defaults instead of the demo profile)")
    add_preset_arg(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.lr=1e-4 (repeatable)")
    from typing import get_args

    from omnivad.config import ProtocolConfig

    names = list(get_args(ProtocolConfig.model_fields["name"].annotation))  # the one list: protocol.name's values
    p.add_argument("--protocol", choices=names, help="protocol (default protocol.name: E1)")
    p.add_argument("--method", help="a registered method: mil | null-mil | nullang-mil | mmil | bn-wvad | ...")
    p.add_argument("--methods", help="compare methods (Table 10): comma-separated METHOD[@TRUNK][+ac|+noac], "
                   "e.g. mil,mmil,bn-wvad,nullang-mil,nullang-mil@bn-wvad; writes table10.json/md")
    p.add_argument("--ac", dest="ac", action="store_true", default=None, help="train the Abnormal-Conflict classifier")
    p.add_argument("--no-ac", dest="ac", action="store_false", help="no Abnormal-Conflict classifier")
    p.add_argument("--folds", type=int, help="folds to run (protocol.folds)")
    p.add_argument("--steps", type=int, help="training steps per run (train.steps)")
    p.add_argument("--seed", type=int, help="training seed (train.seed)")
    p.add_argument("--workers", type=int, help="Ray Train workers per run")
    p.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="one GPU per worker")
    p.add_argument("--corpus", help="corpus URI (path or s3://)")
    p.add_argument("--out", help="results/checkpoints URI (path or s3://)")
    p.add_argument("--targets", help="comma-separated targets for E2-E4")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    add_log_args(p)


def add_log_args(p: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--progress`` (every job; also before the subcommand of ``omnivad``)."""
    from omnivad.logs import LEVELS

    if "--log-level" in p._option_string_actions:
        return
    p.add_argument("--log-level", choices=LEVELS, default=argparse.SUPPRESS,
                   help="level of the omnivad logger (DEBUG also keeps Ray's filtered noise; default INFO)")
    p.add_argument("--progress", action="store_true", default=argparse.SUPPRESS,
                   help="keep Ray Data's progress bars (off by default)")


def apply_log_args(args: argparse.Namespace) -> None:
    from omnivad.logs import setup

    setup(getattr(args, "log_level", None), getattr(args, "progress", None))


def config_from_args(args: argparse.Namespace) -> Any:
    from omnivad import config

    flags = {
        "protocol.name": args.protocol, "model.method": args.method, "loss.ac": args.ac,
        "protocol.folds": args.folds, "train.steps": args.steps, "train.seed": args.seed,
        "scaling.workers": args.workers, "scaling.use_gpu": args.use_gpu, "corpus.uri": args.corpus,
        "storage.out": args.out,
        "protocol.targets": args.targets.split(",") if args.targets else None,
    }
    overrides = config.flag_overrides(flags)
    args.demo_profile = demo = wants_demo(args)
    cfg = config.load(args.config, overrides + list(args.overrides), base=config.DEMO_PROFILE if demo else None,
                      preset=getattr(args, "preset", None))
    if cfg.protocol.folds > cfg.benchmark.folds:
        cfg.benchmark.folds = cfg.protocol.folds
    return cfg


