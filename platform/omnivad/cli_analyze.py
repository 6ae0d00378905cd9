"""``omnivad analyze discrepancy|conflicts|categories``: the MDVAD analyses of a corpus or a finished run
(:mod:`omnivad.analysis`). Each prints its table (Markdown) and writes JSON + Markdown (+ CSV and a PNG for
``discrepancy``) to ``--out``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from omnivad import storage


def _write(out: str, stem: str, result: dict[str, Any], md: str, extra: dict[str, str] | None = None) -> list[str]:
    fs, root = storage.filesystem(out)
    written = []
    for name, data in {f"{stem}.json": json.dumps(result, indent=2, sort_keys=True) + "\n", f"{stem}.md": md,
                       **(extra or {})}.items():
        storage.write_bytes_atomic(fs, storage.join(root, name), data.encode())
        written.append(storage.join(out, name))
    return written


def _progress(msg: str) -> None:
    from omnivad.logs import logger

    logger().info(f"[analyze] {msg}")


def _discrepancy(args: argparse.Namespace) -> int:
    from omnivad.analysis.discrepancy import csv_text, discrepancy, heatmap
    from omnivad.report.tables import discrepancy_table

    domains = [d.strip() for d in args.domains.split(",") if d.strip()] if args.domains else None
    result = discrepancy(args.corpus, args.split, domains, args.reading, args.solver, args.projections, args.seed,
                         progress=None if args.quiet else _progress)
    md = discrepancy_table(result)
    written = _write(args.out, "discrepancy", result, md, {"discrepancy.csv": csv_text(result)})
    if "://" not in args.out:
        written.append(heatmap(result, storage.join(args.out, "discrepancy.png")))
    print(md + "\n" + "\n".join(f"wrote {w}" for w in written))
    return 0


def _threshold(text: str) -> float | str:
    if text == "job":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'job', got {text!r}") from None


def _conflicts(args: argparse.Namespace) -> int:
    from omnivad.analysis.conflicts import conflicts
    from omnivad.report.tables import conflict_table

    result = conflicts(args.run_dir, args.corpus, args.threshold)
    md = conflict_table(result)
    written = _write(args.out or storage.join(args.run_dir, "analysis"), "conflicts", result, md)
    print(md + "\n" + "\n".join(f"wrote {w}" for w in written))
    return 0


def _categories(args: argparse.Namespace) -> int:
    from omnivad.analysis.categories import categories
    from omnivad.report.tables import category_table

    result = categories(args.run_dir, args.corpus, args.negatives)
    tables = ([category_table(result["per_category"], args.negatives)] if "per_category" in result else
              [f"#### start {s}\n\n" + category_table(pc, args.negatives) for s, pc in result["starts"].items()])
    md = "\n".join(tables)
    if result["matches_results"] is False:
        md += "\nNote: these differ from results.json's per_category (recomputed from the saved scores).\n"
    written = _write(args.out or storage.join(args.run_dir, "analysis"), "categories", result, md)
    print(md + "\n" + "\n".join(f"wrote {w}" for w in written))
    return 0


def add_analyze(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``omnivad analyze`` and its three commands on the top-level sub-parsers."""
    from omnivad.analysis.conflicts import DEFAULT_THRESHOLD
    from omnivad.analysis.discrepancy import DEFAULT_PROJECTIONS, READINGS, SOLVERS
    from omnivad.metrics import CATEGORY_NEGATIVES

    an = sub.add_parser("analyze", help="MDVAD analyses: scene discrepancy (EMD), conflicts (Eq. 8), per-category "
                        "metrics").add_subparsers(dest="analyze_cmd", required=True, metavar="CMD")
    d = an.add_parser("discrepancy", help="EMD between every pair of domains' features (MDVAD Table 3)",
                      description="writes OUT/discrepancy.{json,csv,md,png}")
    d.add_argument("--corpus", required=True, help="corpus URI (local or s3://)")
    d.add_argument("--split", default="train", help="the split whose videos are compared")
    d.add_argument("--domains", help="comma-separated domains (default: every domain of the corpus)")
    d.add_argument("--reading", choices=READINGS, default="prototypes",
                   help="prototypes: class means weighted by class counts (spec A25); samples: every video a point")
    d.add_argument("--solver", choices=SOLVERS, default="auto", help="exact, sliced (approximation), or auto by size")
    d.add_argument("--projections", type=int, default=DEFAULT_PROJECTIONS, help="sliced solver: random directions")
    d.add_argument("--seed", type=int, default=0, help="sliced solver: seed of the directions")
    d.add_argument("--out", default="discrepancy", help="output folder")
    d.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    d.set_defaults(func=_discrepancy)
    c = an.add_parser("conflicts", help="relative FPR/FNR of cross-domain models of a single run (MDVAD Table A2, Eq. 8)",
                      description="writes OUT/conflicts.{json,md} (default OUT: RUN_DIR/analysis)")
    c.add_argument("run_dir", metavar="RUN_DIR", help="a `single` protocol run's folder (results.json, scores.csv)")
    c.add_argument("--corpus", help="corpus for the ground truth (default: the one results.json names)")
    c.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help="frame score >= threshold is abnormal; 'job': each model's own validation threshold")
    c.add_argument("--out", help="output folder (unset: RUN_DIR/analysis)")
    c.set_defaults(func=_conflicts)
    g = an.add_parser("categories", help="per-category AUC/AP of a run's test scores (BN-WVAD Table 9, MDVAD Fig. A4)",
                      description="writes OUT/categories.{json,md} (default OUT: RUN_DIR/analysis)")
    g.add_argument("run_dir", metavar="RUN_DIR", help="a protocol run's folder (results.json, scores.csv)")
    g.add_argument("--corpus", help="corpus for the ground truth and categories (default: the one results.json names)")
    g.add_argument("--negatives", choices=CATEGORY_NEGATIVES, default="normal",
                   help="normal: a category's videos plus every normal test video; none: the category's videos only")
    g.add_argument("--out", help="output folder (unset: RUN_DIR/analysis)")
    g.set_defaults(func=_categories)
