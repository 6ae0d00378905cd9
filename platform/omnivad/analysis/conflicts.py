"""Abnormal conflict as relative error rates (MDVAD §3.3, Table A2, Eq. 8) from a ``single`` run's scores.

    AC_{i,j} = [ (FPR_{i,j} − FPR_{j,j}) + (FNR_{i,j} − FNR_{j,j}) ] / 2

``i`` the source (training) domain, ``j`` the target; ``FPR_{i,j}``/``FNR_{i,j}`` the frame-level false-positive
and false-negative rates of the model trained on ``i`` over the pooled test frames of ``j`` (the metrics' frame
alignment, :func:`omnivad.metrics.align_frames`). A frame is predicted abnormal when its score is ``>=`` the
threshold. Threshold (spec A25): **0.5** on the score at frame level; the alternative ``"job"`` uses each model's
own operating threshold from ``jobs.json`` (``threshold.value``, chosen on its validation split). Eq. 8 is
computed per fold, then averaged over folds (mean and sample std); the diagonal is 0 by definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from omnivad.analysis import AnalysisError
from omnivad.analysis.rundir import RunScores, TestVideo, load_run
from omnivad.metrics import align_frames
from omnivad.protocols.common import mean_std

DEFAULT_THRESHOLD = 0.5


def error_rates(scores: Mapping[str, np.ndarray], tests: Mapping[str, TestVideo], threshold: float,
                align: str = "scores", where: str = "") -> dict[str, float]:
    """``{"fpr", "fnr"}`` over the pooled frames of ``tests`` (every video must have a score):
    FPR = FP / (FP + TN) over gt-normal frames, FNR = FN / (FN + TP) over gt-abnormal frames; ``nan`` when
    the domain has no frame of that class."""
    missing = sorted(v for v in tests if v not in scores)
    if missing:
        raise AnalysisError(f"{where}: {len(missing)} test videos without scores: {', '.join(missing[:10])}")
    fp = tn = fn = tp = 0
    for vid, tv in tests.items():
        s, g = align_frames(scores[vid], tv.gt, align)
        pred = s >= threshold
        pos = g.astype(bool)
        fp += int(np.sum(pred & ~pos))
        tn += int(np.sum(~pred & ~pos))
        fn += int(np.sum(~pred & pos))
        tp += int(np.sum(pred & pos))
    return {"fpr": fp / (fp + tn) if fp + tn else float("nan"), "fnr": fn / (fn + tp) if fn + tp else float("nan")}


def relative_conflict(rates: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Eq. 8 for every (source i, target j) with an in-domain model j→j: ``rates[i][j] = {fpr, fnr}``."""
    out: dict[str, dict[str, float]] = {}
    for i, row in rates.items():
        for j, r in row.items():
            if j not in rates or j not in rates[j]:
                continue  # no in-domain model for j: Eq. 8 undefined
            own = rates[j][j]
            out.setdefault(i, {})[j] = ((r["fpr"] - own["fpr"]) + (r["fnr"] - own["fnr"])) / 2
    return out


def _threshold_of(run: RunScores, job: str, threshold: float | str) -> float:
    if threshold != "job":
        return float(threshold)
    rec = run.jobs.get(job, {}).get("threshold")
    value = rec.get("value") if isinstance(rec, dict) else None
    if value is None:
        raise AnalysisError(f"{run.run_dir}/jobs.json: job {job!r} has no field 'threshold.value' (use a fixed "
                            "--threshold instead of 'job')")
    return float(value)


def conflicts(run_dir: str, corpus: str | None = None, threshold: float | str = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Table A2 of a ``single`` run: ``matrix`` (mean of Eq. 8 over folds, rows = source, columns = target),
    ``matrix_std``, ``fpr``/``fnr`` (fold means), ``per_fold`` and ``n`` (folds)."""
    if threshold != "job" and not isinstance(threshold, (int, float)):
        raise AnalysisError(f"--threshold: expected a number or 'job', got {threshold!r}")
    run = load_run(run_dir, corpus, protocol="single")
    per_fold: dict[str, dict[str, Any]] = {}
    for job, by_domain in sorted(run.scores.items()):
        rec = run.jobs.get(job)
        if rec is None or len(rec.get("key", [])) < 2:
            raise AnalysisError(f"{run_dir}/jobs.json: no record with a (fold, source) 'key' for job {job!r}")
        fold, source = str(rec["key"][0]), str(rec["key"][1])
        thr = _threshold_of(run, job, threshold)
        rates = per_fold.setdefault(fold, {"rates": {}})["rates"].setdefault(source, {})
        for target, scores in sorted(by_domain.items()):
            rates[target] = error_rates(scores, run.tests[target], thr, run.align, f"{run_dir}: job {job!r}, {target}")
    if not per_fold:
        raise AnalysisError(f"{run_dir}/scores.csv: no scores")
    for f in per_fold.values():
        f["ac"] = relative_conflict(f["rates"])
    sources = sorted({s for f in per_fold.values() for s in f["ac"]})
    targets = sorted({t for f in per_fold.values() for row in f["ac"].values() for t in row})

    def over_folds(get: Any) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float | None]]]:
        mean: dict[str, dict[str, float]] = {}
        std: dict[str, dict[str, float | None]] = {}
        for s in sources:
            for t in targets:
                vals = [v for f in per_fold.values() if (v := get(f, s, t)) is not None]
                if vals:
                    mean.setdefault(s, {})[t], std.setdefault(s, {})[t] = mean_std(vals)
        return mean, std

    matrix, matrix_std = over_folds(lambda f, s, t: f["ac"].get(s, {}).get(t))
    fpr, _ = over_folds(lambda f, s, t: f["rates"].get(s, {}).get(t, {}).get("fpr"))
    fnr, _ = over_folds(lambda f, s, t: f["rates"].get(s, {}).get(t, {}).get("fnr"))
    return {"analysis": "conflicts", "run_dir": run_dir, "equation": "MDVAD Eq. 8",
            "threshold": threshold, "align": run.align, "prediction": "score >= threshold is abnormal (frame level)",
            "domains": sources, "matrix": matrix, "matrix_std": matrix_std, "fpr": fpr, "fnr": fnr,
            "n": len(per_fold), "per_fold": per_fold}
