"""The paper-table commands: ``omnivad run --variants paper`` and ``--protocols`` (Table 10 across protocols),
and ``omnivad reproduce --paper ...``. Registered by :mod:`omnivad.cli` with one line each."""

from __future__ import annotations

import argparse
from typing import Any

from omnivad.errors import OmnivadError


def add_paper_run_args(p: argparse.ArgumentParser) -> None:
    """``omnivad run``'s paper-table flags."""
    p.add_argument("--variants", choices=["paper"],
                   help="paper: run the paper's Head x AC variants of --protocol (and the single-domain reference where "
                   "its table has one) and write its table (E1: Table 5, E2: 6, E3: 7, E4: 8, ubnormal-open: 9 and A5) "
                   "as <table>.md/.csv under <out>/<protocol>-paper-<time>/")
    p.add_argument("--protocols", help="with --methods: Table 10 across these comma-separated protocols (e.g. "
                   "E1,E2,E3,E4) in one table, under <out>/table10-<time>/")


def paper_run_main(args: argparse.Namespace, cfg: Any) -> int | None:
    """Handle ``--variants``/``--protocols`` (None: neither was given, a plain run)."""
    from omnivad.paper.variants import run_paper, run_table10

    variants, protocols = getattr(args, "variants", None), getattr(args, "protocols", None)
    if not variants and not protocols:
        return None
    if variants and (protocols or getattr(args, "methods", None) or args.method):
        raise OmnivadError("--variants paper picks the methods itself: give it without --method/--methods/--protocols")
    if protocols and not getattr(args, "methods", None):
        raise OmnivadError("--protocols needs --methods (Table 10: one row per method and protocol)")
    if variants:
        out = run_paper(cfg)
    else:
        out = run_table10(cfg, [m for m in args.methods.split(",") if m.strip()],
                          [p for p in protocols.split(",") if p.strip()])
    print(out["table"])
    print(f"tables: {out['results_uri']}")
    return 0


def add_reproduce(sub: Any) -> None:
    from omnivad.cli_args import add_log_args
    from omnivad.paper.reproduce import PAPERS

    p = sub.add_parser("reproduce", help="every table of a paper the corpus supports, in the paper's layout, one report",
                       description="Runs each table of --paper that --corpus supports (a table it does not support is "
                       "skipped with the reason) and writes <out>/reproduce-<paper>-<time>/report.md, "
                       "report/index.html and reproduce.json.")
    p.add_argument("--paper", required=True, choices=list(PAPERS), help="the paper whose tables to run")
    p.add_argument("--corpus", required=True, help="corpus URI (path or s3://)")
    p.add_argument("--out", help="results root (storage.out)")
    p.add_argument("--config", help="YAML/JSON config file (the paper's defaults otherwise)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field of every run, e.g. --set train.steps=50 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (tables run or skipped, and why) and exit")
    add_log_args(p)
    p.set_defaults(func=reproduce_main)


def reproduce_main(args: argparse.Namespace) -> int:
    from omnivad import config
    from omnivad.corpus.format import Corpus
    from omnivad.paper.reproduce import CorpusView, plan, plan_text, reproduce
    from omnivad.protocols.setup import check_corpus_uri

    flags = config.flag_overrides({"corpus.uri": args.corpus, "storage.out": args.out})
    cfg = config.load(args.config, flags + list(args.overrides))
    check_corpus_uri(cfg)
    view = CorpusView.of(Corpus.open(cfg.corpus.uri, verify=False), cfg)
    if args.dry_run:
        print(plan_text(args.paper, view, plan(args.paper, view)))
        return 0
    out = reproduce(cfg, args.paper, view)
    print(f"report: {out['report_dir']}")
    return 0
