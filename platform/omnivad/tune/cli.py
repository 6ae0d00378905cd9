"""``jobs/tune.py``'s arguments and entry: the run flags of ``jobs/mdvad.py`` plus the search's own."""

from __future__ import annotations

import argparse

from omnivad.cli_args import add_run_args, config_from_args
from omnivad.errors import OmnivadError


def add_tune_args(p: argparse.ArgumentParser) -> None:
    add_run_args(p)
    p.add_argument("--objective", choices=["E1", "E2", "both"], help="what the search maximises (tune.objective)")
    p.add_argument("--trials", type=int, help="number of trials (tune.trials)")
    p.add_argument("--name", help="search directory under --out (tune.name)")
    p.add_argument("--resume", action="store_true", help="continue the search at <out>/<name> where it stopped")


def tune_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.tune.search import run_search

    if getattr(args, "methods", None):
        raise OmnivadError("--methods compares methods (jobs/mdvad.py); a search tunes one --method")
    flags = {"tune.objective": args.objective, "tune.trials": args.trials, "tune.name": args.name}
    args.overrides = config.flag_overrides(flags) + list(args.overrides)
    cfg = config_from_args(args)
    if args.print_config:
        print(config.to_yaml(cfg))
        return 0
    summary = run_search(cfg, resume=args.resume)
    best = summary["best"]
    keys = [k for k in ("e1_val_auc", "e2_val_auc") if k in best]
    print(f"best trial {best['trial_id']}: " + ", ".join(f"{k} {100 * best[k]:.2f}" for k in keys))
    for o, v in summary.get("test", {}).get("trials", {}).get(str(best["trial_id"]), {}).items():
        print(f"  test (once, after the search) {o}: mean AUC {100 * v['mean_auc']:.2f}")
    extra = ", pareto.md, pareto.png" if "pareto" in summary else ""
    print(f"results: {summary['search_uri']} (trials.md, best_config.yaml{extra})")
    return 0
