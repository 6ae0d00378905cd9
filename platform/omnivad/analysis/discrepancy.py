"""Scene discrepancy between domains: Earth Mover's Distance of their features (MDVAD §3.2, Table 3).

Reading (spec A25, the default ``reading="prototypes"``, after Cui et al. CVPR'18): every video is its
video-level feature, the mean of its snippet features over snippets and crops. A domain is a set of class
prototypes (the mean video feature of each class) weighted by class frequency; the ground distance is the
Euclidean distance between prototypes.

- **normal** (Table 3's upper-right triangle): one normal prototype per domain, so the EMD is the distance
  between the two domains' mean normal features;
- **abnormal** (lower-left, "class-wise"): one prototype per abnormal category of the domain (a multi-label XD
  video counts in each of its categories; uncategorised abnormal videos form one ``(uncategorised)`` class),
  weighted by the category's count.

Alternative ``reading="samples"``: the EMD between the domains' empirical distributions of video-level features
(every normal, resp. abnormal, video one point of equal weight).

Solvers. **Exact**: equal-size uniform point sets by :func:`scipy.optimize.linear_sum_assignment` (an optimal
transport plan between uniform measures of equal size is a permutation); anything else by the transport linear
programme (:func:`scipy.optimize.linprog`, HiGHS). **Sliced** (the documented approximation for large sets):
``projections`` random directions on the unit sphere (``numpy`` generator seeded with ``seed``), the exact 1-D
W1 of the projected measures averaged over them (sliced Wasserstein SW1), divided by ``E|θ₁|`` — the mean
absolute coordinate of a uniform unit vector in C dimensions — so that a pure translation gets its exact EMD
(raw SW1 shrinks like ``sqrt(2/(πC))``) in expectation over directions. It is an estimate, not a bound; its
error against the exact solver, measured in ``tests/analysis/test_discrepancy.py`` (60 vs 60 points, C = 16):
−5 % for a pure shift at 256 projections (+0.02 % at 1024), but −31 % for a shift plus a change of spread and
−37 % for a change of spread alone. Sliced numbers are comparable with each other, not with exact ones. ``solver="auto"`` is exact up to :data:`EXACT_MAX_PAIRS`
point pairs (assignment) / :data:`EXACT_MAX_LP` (linear programme), sliced beyond.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog
from scipy.sparse import coo_matrix
from scipy.spatial.distance import cdist
from scipy.special import gammaln

from omnivad.analysis import AnalysisError
from omnivad.corpus.format import Corpus
from omnivad.errors import CorpusError
from omnivad.metrics import NON_CATEGORIES

READINGS = ("prototypes", "samples")
SOLVERS = ("auto", "exact", "sliced")
UNCATEGORISED = "(uncategorised)"
#: ``auto`` solves equal-size uniform sets exactly up to this many point pairs (n·n), ...
EXACT_MAX_PAIRS = 4_000_000
#: ... and other sets by the linear programme up to this many transport variables (n·m).
EXACT_MAX_LP = 250_000
DEFAULT_PROJECTIONS = 256


# --------------------------------------------------------------------------------------------------
# EMD between two weighted point sets


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise AnalysisError(f"EMD weights: expected {n} non-negative weights with a positive sum, got shape {w.shape}")
    return w / w.sum()


def _uniform(w: np.ndarray) -> bool:
    return bool(np.allclose(w, w[0]))


def emd_exact(x: np.ndarray, y: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> float:
    """Exact EMD (W1, Euclidean ground distance) between points ``x`` (n, C) with weights ``a`` and ``y`` (m, C)
    with weights ``b`` (uniform when ``None``; normalised to sum 1)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = _weights(a, len(x)), _weights(b, len(y))
    cost = cdist(x, y)
    if len(x) == len(y) and _uniform(a) and _uniform(b):
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].mean())
    n, m = cost.shape
    var = np.arange(n * m)
    rows = np.concatenate([var // m, n + var % m])  # row sums (source i), then column sums (target j)
    a_eq = coo_matrix((np.ones(2 * n * m), (rows, np.concatenate([var, var]))), shape=(n + m, n * m)).tocsr()
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")
    if not res.success:
        raise AnalysisError(f"EMD linear programme ({n}×{m}) failed: {res.message}")
    return float(res.fun)


def _abs_coordinate_mean(dim: int) -> float:
    """``E|θ₁|`` for θ uniform on the unit sphere of R^dim: Γ(d/2) / (√π Γ((d+1)/2))."""
    return float(math.exp(gammaln(dim / 2) - gammaln((dim + 1) / 2)) / math.sqrt(math.pi))


def emd_sliced(x: np.ndarray, y: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None,
               projections: int = DEFAULT_PROJECTIONS, seed: int = 0) -> float:
    """Sliced estimate of the EMD (module docstring): mean exact 1-D W1 over ``projections`` seeded random
    directions, divided by ``E|θ₁|``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    a, b = _weights(a, len(x)), _weights(b, len(y))
    if projections < 1:
        raise AnalysisError(f"sliced EMD: projections must be >= 1, got {projections}")
    dim = x.shape[1]
    theta = np.random.default_rng(seed).standard_normal((projections, dim))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    values = np.concatenate([x @ theta.T, y @ theta.T], axis=0).T  # (P, n + m)
    mass = np.concatenate([a, -b])
    order = np.argsort(values, axis=1, kind="stable")
    sorted_v = np.take_along_axis(values, order, axis=1)
    cdf_gap = np.cumsum(mass[order], axis=1)  # F − G on each interval between sorted values
    w1 = np.sum(np.abs(cdf_gap[:, :-1]) * np.diff(sorted_v, axis=1), axis=1)
    return float(w1.mean() / _abs_coordinate_mean(dim))


def emd(x: np.ndarray, y: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None,
        solver: str = "auto", projections: int = DEFAULT_PROJECTIONS, seed: int = 0) -> tuple[float, str]:
    """``(EMD, solver used)``: ``exact``/``sliced`` as asked; ``auto`` exact within the size limits."""
    if solver not in SOLVERS:
        raise AnalysisError(f"solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise AnalysisError("EMD of an empty point set")
    if solver == "auto":
        equal_uniform = n == m and (a is None or _uniform(_weights(a, n))) and (b is None or _uniform(_weights(b, m)))
        solver = "exact" if (equal_uniform and n * m <= EXACT_MAX_PAIRS) or n * m <= EXACT_MAX_LP else "sliced"
    if solver == "exact":
        return emd_exact(x, y, a, b), "exact"
    return emd_sliced(x, y, a, b, projections, seed), "sliced"


# --------------------------------------------------------------------------------------------------
# Domains


@dataclass
class DomainFeatures:
    """Video-level features of one domain's split: normal videos, and abnormal videos by category."""

    normal: list[np.ndarray] = field(default_factory=list)
    abnormal: list[np.ndarray] = field(default_factory=list)
    by_category: dict[str, list[np.ndarray]] = field(default_factory=dict)


def domain_features(corpus: Corpus, domain: str, split: str = "train",
                    progress: Callable[[str], None] | None = None) -> DomainFeatures:
    """Every video's mean feature over snippets and crops, read part by part (memory: one part + C per video)."""
    if domain not in corpus.domains:
        raise AnalysisError(f"{corpus.uri}: no domain {domain!r} (domains: {', '.join(corpus.domains)})")
    if split not in corpus.splits(domain):
        raise AnalysisError(f"{corpus.uri}: domain {domain!r} has no {split!r} split "
                            f"(splits: {', '.join(corpus.splits(domain))})")
    out = DomainFeatures()
    n = 0
    try:
        for v in corpus.videos(domain, split):
            f = np.asarray(v.features, dtype=np.float64).reshape(-1, v.features.shape[-1]).mean(axis=0)
            if v.label == 0:
                out.normal.append(f)
            else:
                out.abnormal.append(f)
                cats = [c for c in dict.fromkeys(v.categories) if c not in NON_CATEGORIES] or [UNCATEGORISED]
                for c in cats:
                    out.by_category.setdefault(c, []).append(f)
            n += 1
            if progress and n % 500 == 0:
                progress(f"{domain}/{split}: {n} videos read")
    except CorpusError as exc:
        raise AnalysisError(str(exc)) from exc
    if progress:
        progress(f"{domain}/{split}: {n} videos ({len(out.normal)} normal, {len(out.abnormal)} abnormal, "
                 f"{len(out.by_category)} abnormal classes)")
    return out


def _points(df: DomainFeatures, kind: str, reading: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(points, weights) of one domain: prototypes weighted by class count, or every video."""
    if kind == "normal":
        pts = np.array(df.normal)
        return (pts.mean(axis=0, keepdims=True), None) if reading == "prototypes" else (pts, None)
    if reading == "samples":
        return np.array(df.abnormal), None
    cats = sorted(df.by_category)
    return (np.array([np.mean(df.by_category[c], axis=0) for c in cats]),
            np.array([len(df.by_category[c]) for c in cats], dtype=np.float64))


def discrepancy(corpus_uri: str, split: str = "train", domains: Sequence[str] | None = None,
                reading: str = "prototypes", solver: str = "auto", projections: int = DEFAULT_PROJECTIONS,
                seed: int = 0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Table 3 of a corpus: ``normal`` and ``abnormal`` EMD matrices ``{i: {j: emd}}`` (symmetric, 0 on the
    diagonal) between every pair of ``domains`` (default: all), with the reading and solver used."""
    if reading not in READINGS:
        raise AnalysisError(f"reading: expected one of {', '.join(READINGS)}, got {reading!r}")
    if solver not in SOLVERS:
        raise AnalysisError(f"solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
    try:
        corpus = Corpus.open(corpus_uri, verify=False)
    except CorpusError as exc:
        raise AnalysisError(str(exc)) from exc
    names = list(domains) if domains else list(corpus.domains)
    feats = {d: domain_features(corpus, d, split, progress) for d in names}
    for d, df in feats.items():
        for kind, pts in (("normal", df.normal), ("abnormal", df.abnormal)):
            if not pts:
                raise AnalysisError(f"{corpus_uri}: domain {d!r} has no {kind} {split!r} videos (Table 3 needs both)")
    points = {(d, kind): _points(feats[d], kind, reading) for d in names for kind in ("normal", "abnormal")}
    out: dict[str, Any] = {"analysis": "discrepancy", "corpus": corpus_uri, "split": split, "domains": names,
                           "reading": reading, "solver": solver, "projections": projections, "seed": seed}
    used: set[str] = set()
    pairs = list(itertools.combinations(names, 2))
    for kind in ("normal", "abnormal"):
        matrix: dict[str, dict[str, float]] = {d: {d: 0.0} for d in names}
        for k, (i, j) in enumerate(pairs, start=1):
            (x, a), (y, b) = points[(i, kind)], points[(j, kind)]
            value, how = emd(x, y, a, b, solver, projections, seed)
            used.add(how)
            matrix[i][j] = matrix[j][i] = value
            if progress:
                progress(f"{kind} EMD {k}/{len(pairs)}: {i}–{j} = {value:.4f} ({how}, {len(x)}×{len(y)} points)")
        out[kind] = matrix
    out["solver_used"] = "+".join(sorted(used)) or "none"
    out["classes"] = {d: {c: len(v) for c, v in sorted(feats[d].by_category.items())} for d in names}
    return out


# --------------------------------------------------------------------------------------------------
# Outputs


def combined(result: Mapping[str, Any]) -> list[list[float | None]]:
    """Table 3's one grid: ``normal`` above the diagonal, ``abnormal`` below, ``None`` on it."""
    names = list(result["domains"])
    return [[None if a == b else float(result["normal" if b > a else "abnormal"][i][j]) for b, j in enumerate(names)]
            for a, i in enumerate(names)]


def csv_text(result: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["upper=normal;lower=abnormal", *result["domains"]])
    for name, row in zip(result["domains"], combined(result)):
        w.writerow([name, *("" if v is None else f"{v:.6g}" for v in row)])
    return buf.getvalue()


def heatmap(result: Mapping[str, Any], path: str) -> str:
    """Table 3 as a heat-map PNG (matplotlib, Agg)."""
    from pathlib import Path

    from omnivad.report.plots import _plt, _save

    plt = _plt()
    names = list(result["domains"])
    grid = np.array([[np.nan if v is None else v for v in row] for row in combined(result)], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.0 * len(names) + 1.8))
    finite = grid[np.isfinite(grid)]
    im = ax.imshow(grid, cmap="magma", vmin=finite.min() if finite.size else 0, vmax=finite.max() if finite.size else 1)
    mid = float(np.nanmean(grid)) if finite.size else 0.0
    for a in range(len(names)):
        for b in range(len(names)):
            ax.text(b, a, "–" if a == b else f"{grid[a, b]:.2f}", ha="center", va="center", fontsize=8,
                    color="k" if a == b or grid[a, b] >= mid else "w")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set(title=f"EMD ({result['reading']}): upper = normal, lower = abnormal")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return str(_save(fig, Path(path)))
