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

from omnivad.cli import add_run_args, job_main, shutdown_and_exit  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    add_run_args(p)
    p.add_argument("--objective", choices=["E1", "E2", "both"], help="what the search maximises (tune.objective)")
    p.add_argument("--trials", type=int, help="number of trials (tune.trials)")
    p.add_argument("--name", help="search directory under --out (tune.name)")
    p.add_argument("--resume", action="store_true", help="continue the search at <out>/<name> where it stopped")


def run(args: argparse.Namespace) -> int:
    import json

    from omnivad import config
    from omnivad.cli import config_from_args
    from omnivad.tune.search import run_search

    if getattr(args, "methods", None):
        raise ValueError("--methods compares methods (jobs/mdvad.py); a search tunes one --method")
    flags = {"tune.objective": args.objective, "tune.trials": args.trials, "tune.name": args.name}
    args.overrides = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = config_from_args(args)
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    summary = run_search(cfg, resume=args.resume)
    fs_note = summary["search_uri"]
    best = summary["best"]
    keys = [k for k in ("e1_val_auc", "e2_val_auc") if k in best]
    print(f"best trial {best['trial_id']}: " + ", ".join(f"{k} {100 * best[k]:.2f}" for k in keys))
    for o, v in summary.get("test", {}).get("trials", {}).get(str(best["trial_id"]), {}).items():
        print(f"  test (once, after the search) {o}: mean AUC {100 * v['mean_auc']:.2f}")
    print(f"results: {fs_note} (trials.md, best_config.yaml{', pareto.md, pareto.png' if 'pareto' in summary else ''})")
    return 0


def main() -> int:
    return job_main("jobs/tune.py", __doc__, add_args, run)


if __name__ == "__main__":
    shutdown_and_exit(main())
