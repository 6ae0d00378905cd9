"""Per-category AUC/AP of a finished run, recomputed from its saved test scores.

For each abnormal category c of a test domain: the frame metrics over the videos of c plus every normal test
video of that domain (:func:`omnivad.metrics.category_metrics`; ``negatives="none"``: the videos of c only), per
job, then mean ± sample std over the protocol's folds exactly as ``results.json``'s ``per_category`` (which runs
write with the default reading). Which jobs count for a domain is the protocol's rule (``single``: in-domain).
"""

from __future__ import annotations

from typing import Any

from omnivad.analysis import AnalysisError
from omnivad.analysis.rundir import load_run
from omnivad.metrics import category_metrics
from omnivad.protocols.base import get_protocol
from omnivad.protocols.common import Job, category_summary


def categories(run_dir: str, corpus: str | None = None, negatives: str = "normal") -> dict[str, Any]:
    """``{"per_category": {domain: {category: {n, n_videos, n_category_videos, auc, auc_std, ap, ap_std}}}}``
    (one entry per start under ``"starts"`` for multi-start protocols such as E4), plus ``matches_results``:
    whether the recomputed numbers equal those results.json holds (``None`` when it holds none)."""
    run = load_run(run_dir, corpus)
    try:
        protocol = get_protocol(run.protocol)
    except ValueError as exc:
        raise AnalysisError(f"{run_dir}/results.json: field 'protocol': {exc}") from exc
    jobs = []
    for name, by_domain in sorted(run.scores.items()):
        rec = run.jobs.get(name)
        if rec is None:
            raise AnalysisError(f"{run_dir}/jobs.json: no record for job {name!r} of scores.csv")
        per_cat = {}
        for d, scores in by_domain.items():
            vids = [(v, t.gt, t.label, t.categories) for v, t in run.tests[d].items()]
            cats = category_metrics(vids, scores, d, align=run.align, negatives=negatives)
            if cats:
                per_cat[d] = cats
        jobs.append(Job(tuple(rec["key"]), [], list(rec.get("test_domains", by_domain)), {"per_category": per_cat}))
    starts = [s.get("start") for s in run.results.get("starts", [])] or [None]
    by_start = {s: category_summary(protocol, [j for j in jobs if s is None or j.key[-1] == s]) for s in starts}
    saved = [r.get("per_category") for r in (run.results.get("starts") or [run.results])]
    matches = None
    if negatives == "normal" and any(x is not None for x in saved):
        matches = all(x == by_start[s] for x, s in zip(saved, starts))
    out: dict[str, Any] = {"analysis": "categories", "run_dir": run_dir, "protocol": run.protocol,
                           "negatives": negatives, "align": run.align, "matches_results": matches}
    if starts == [None]:
        out["per_category"] = by_start[None]
    else:
        out["starts"] = {str(s): v for s, v in by_start.items()}
    if not any(by_start.values()):
        raise AnalysisError(f"{run_dir}: no test video of the scored domains carries a category (corpus field "
                            "'categories'); per-category metrics need categorised abnormal test videos")
    return out
