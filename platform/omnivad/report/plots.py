"""``omnivad plot RUN_DIR``: a run's figures under ``RUN_DIR/figures/`` and ``RUN_DIR/report/index.html``.

Figures (PNG, matplotlib Agg), each written only when its input is there:

* ``roc_<domain>.png`` / ``pr_<domain>.png``: frame-level ROC and PR curves per test domain, one curve per job,
  from the score files (``scores.csv``, ``scores/<job>/<domain>/<video>.npy``) and the corpus's gt, aligned as
  the run was scored (``metrics.align``, :func:`omnivad.metrics.align_frames`);
* ``timeline_<domain>_<video>.png``: a test video's frame scores with its gt shaded and the Abnormal-Conflict
  score where the run wrote one (at most ``--max-videos``, abnormal videos first);
* ``cross_domain.png``: the ``single`` protocol's train-domain × test-domain AUC heat-map (results.json);
* ``training_<run>.png``: loss and validation-AUC curves of each trained run (its ``history.json``);
* ``table10.png``: a comparison's per-domain headline metric per method as grouped bars (``table10.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnivad.errors import OmnivadError


@dataclass
class ScoreRow:
    """One line of ``scores.csv``: a test video's snippet scores (and AC scores) from one job."""

    job: str
    domain: str
    video_id: str
    scores: Path
    ac: Path | None
    label: int = 0


@dataclass
class RunInputs:
    """What the figures are drawn from."""

    run_dir: Path
    results: dict[str, Any] | None = None
    table10: dict[str, Any] | None = None
    scores: list[ScoreRow] = field(default_factory=list)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OmnivadError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def read_scores_csv(run_dir: Path) -> list[ScoreRow]:
    """The rows of ``RUN_DIR/scores.csv`` (empty when the run wrote no scores); paths are relative to RUN_DIR."""
    path = run_dir / "scores.csv"
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for n, r in enumerate(csv.DictReader(fh), start=2):
            try:
                rows.append(ScoreRow(r["job"], r["domain"], r["video_id"], run_dir / r["scores"],
                                     run_dir / r["ac"] if r.get("ac") else None, int(r.get("label") or 0)))
            except (KeyError, ValueError) as exc:
                raise OmnivadError(f"{path}:{n}: bad row ({type(exc).__name__}: {exc})") from exc
    return rows


def read_inputs(run_dir: str | Path) -> RunInputs:
    root = Path(run_dir).expanduser()
    res, t10 = root / "results.json", root / "table10.json"
    if not res.is_file() and not t10.is_file():
        raise OmnivadError(f"{root}: neither results.json nor table10.json here (give a run's folder)")
    return RunInputs(root, _read_json(res) if res.is_file() else None, _read_json(t10) if t10.is_file() else None,
                     read_scores_csv(root))


def _load(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise OmnivadError(f"{path}: cannot read scores ({type(exc).__name__}: {exc})") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# --------------------------------------------------------------------------------------------------- ground truth
def test_gt(corpus_uri: str, domains: set[str]) -> dict[tuple[str, str], np.ndarray]:
    """``{(domain, video_id): frame gt}`` of the test videos of ``domains`` (the gt column only, no features)."""
    from omnivad.analysis.rundir import read_test_videos
    from omnivad.corpus.format import Corpus

    corpus = Corpus.open(corpus_uri)
    tested = [d for d in sorted(domains) if d in corpus.manifest.domains and "test" in corpus.manifest.domains[d].splits]
    return {(d, vid): t.gt.ravel() for d, by_id in read_test_videos(corpus, tested).items() for vid, t in by_id.items()}


def pooled(rows: list[ScoreRow], gt: dict[tuple[str, str], np.ndarray], align: str) -> tuple[np.ndarray, np.ndarray]:
    """Frame scores and frame gt of ``rows`` concatenated (the community's pooled frame level)."""
    from omnivad.metrics import align_frames

    ss, gs = [], []
    for r in rows:
        if (r.domain, r.video_id) not in gt:
            raise OmnivadError(f"{r.scores}: video {r.domain}/{r.video_id} has no test gt in the corpus")
        s, g = align_frames(_load(r.scores), gt[(r.domain, r.video_id)], align)
        ss.append(s)
        gs.append(g)
    return np.concatenate(ss), np.concatenate(gs)


# --------------------------------------------------------------------------------------------------- figures
def _by(rows: list[ScoreRow], key: str) -> dict[str, list[ScoreRow]]:
    out: dict[str, list[ScoreRow]] = {}
    for r in rows:
        out.setdefault(getattr(r, key), []).append(r)
    return out


def curve_figures(inp: RunInputs, gt: dict[tuple[str, str], np.ndarray], figures: Path, align: str) -> list[Path]:
    """``roc_<domain>.png`` and ``pr_<domain>.png``: one curve per job."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    plt = _plt()
    written = []
    for domain, rows in sorted(_by(inp.scores, "domain").items()):
        roc, ax_roc = plt.subplots(figsize=(5, 4.5))
        pr, ax_pr = plt.subplots(figsize=(5, 4.5))
        for job, jrows in sorted(_by(rows, "job").items()):
            s, g = pooled(jrows, gt, align)
            if len(np.unique(g)) < 2:
                continue
            fpr, tpr, _ = roc_curve(g, s)
            prec, rec, _ = precision_recall_curve(g, s)
            ax_roc.plot(fpr, tpr, label=f"{job} (AUC {100 * auc(fpr, tpr):.1f})")
            ax_pr.plot(rec, prec, label=f"{job} (PR area {100 * auc(rec, prec):.1f})")
        ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
        for ax, fig, kind, (xl, yl) in ((ax_roc, roc, "roc", ("false positive rate", "true positive rate")),
                                         (ax_pr, pr, "pr", ("recall", "precision"))):
            ax.set(title=f"{domain}: frame-level {kind.upper()}", xlabel=xl, ylabel=yl, xlim=(0, 1), ylim=(0, 1.02))
            ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "upper right")
            written.append(_save(fig, figures / f"{kind}_{_slug(domain)}.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def _runs_of(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every run of True in ``mask`` (end exclusive)."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    yield from zip(edges[::2].tolist(), edges[1::2].tolist())


def timeline_figures(inp: RunInputs, gt: dict[tuple[str, str], np.ndarray], figures: Path, align: str,
                     max_videos: int) -> list[Path]:
    """``timeline_<domain>_<video>.png`` of the first job's scores, abnormal videos first, at most ``max_videos``."""
    from omnivad.metrics import align_frames

    plt = _plt()
    first = sorted({r.job for r in inp.scores})[:1]
    rows = [r for r in inp.scores if r.job in first and (r.domain, r.video_id) in gt]
    rows.sort(key=lambda r: (-int(gt[(r.domain, r.video_id)].max() > 0), r.domain, r.video_id))
    written = []
    for r in rows[:max(0, max_videos)]:
        s, g = align_frames(_load(r.scores), gt[(r.domain, r.video_id)], align)
        fig, ax = plt.subplots(figsize=(9, 2.6))
        for k, (a, b) in enumerate(_runs_of(g > 0)):
            ax.axvspan(a, b, color="tab:red", alpha=0.18, lw=0, label="ground truth (abnormal)" if k == 0 else None)
        ax.plot(s, color="tab:blue", lw=1.2, label="anomaly score")
        if r.ac is not None and r.ac.is_file():
            ac, _ = align_frames(_load(r.ac), g, align)
            ax.plot(ac, color="tab:orange", lw=1.0, ls="--", label="AC score")
        ax.set(title=f"{r.domain}/{r.video_id} ({r.job})", xlabel="frame", ylabel="score", xlim=(0, len(s)))
        ax.legend(fontsize=7, loc="upper right")
        written.append(_save(fig, figures / f"timeline_{_slug(r.domain)}_{_slug(r.video_id)}.png"))
    return written


def heatmap_figure(results: dict[str, Any], figures: Path) -> list[Path]:
    """``cross_domain.png`` from the ``single`` protocol's ``matrix`` ({train domain: {test domain: AUC}})."""
    matrix = results.get("matrix")
    if not isinstance(matrix, dict) or not matrix:
        return []
    plt = _plt()
    sources = list(matrix)
    targets = sorted({t for row in matrix.values() for t in row}, key=lambda t: (t not in sources, sources.index(t) if t in sources else 0, t))
    grid = np.array([[100 * float(matrix[s].get(t, np.nan)) for t in targets] for s in sources])
    fig, ax = plt.subplots(figsize=(1.2 * len(targets) + 2.5, 1.0 * len(sources) + 1.8))
    im = ax.imshow(grid, cmap="viridis", vmin=np.nanmin(grid), vmax=np.nanmax(grid))
    for i in range(len(sources)):
        for j in range(len(targets)):
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="w" if grid[i, j] < np.nanmean(grid) else "k", fontsize=8)
    ax.set_xticks(range(len(targets)), targets, rotation=30)
    ax.set_yticks(range(len(sources)), sources)
    ax.set(xlabel="tested on", ylabel="trained on", title="cross-domain frame AUC (%)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return [_save(fig, figures / "cross_domain.png")]


def histories(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{run name: history}`` of each checkpoint results.json lists (``history.json`` next to its model.pt)."""
    out = {}
    for uri in results.get("checkpoints", []):
        path = Path(str(uri)).parent / "history.json"
        if path.is_file() and "://" not in str(uri):
            hist = json.loads(path.read_text(encoding="utf-8"))
            parts = path.parent.parts
            out["/".join(parts[-3:])] = list(hist)
    return out


def training_figures(results: dict[str, Any], figures: Path) -> list[Path]:
    """``training_<run>.png``: the loss (left axis) and validation AUC (right axis) against the step."""
    plt = _plt()
    written = []
    for name, hist in sorted(histories(results).items()):
        steps = [h["step"] for h in hist if "loss" in h]
        if not steps:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot(steps, [h["loss"] for h in hist if "loss" in h], color="tab:blue", marker=".", label="loss")
        ax.set(xlabel="step", ylabel="loss", title=f"training: {name}")
        val = [(h["step"], h["val_auc"]) for h in hist if "val_auc" in h]
        if val:
            ax2 = ax.twinx()
            ax2.plot(*zip(*val), color="tab:green", marker="o", label="val AUC")
            ax2.set_ylabel("validation AUC", color="tab:green")
        ax.legend(loc="upper left", fontsize=7)
        written.append(_save(fig, figures / f"training_{_slug(name)}.png"))
    return written


def uvad_threshold_figure(results: dict[str, Any], figures: Path) -> list[Path]:
    """``uvad_thresholds.png`` (a UVAD run): the threshold T_k of every module k per domain (T_1 = ⌈Q·N⌉, then the
    size of the running intersection), with the modules where the stopping rule fired marked."""
    per_domain = results.get("per_domain")
    if not isinstance(per_domain, dict) or not any(isinstance(r, dict) and r.get("modules") for r in per_domain.values()):
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for d, r in sorted(per_domain.items()):
        mods = [m for m in r.get("modules") or [] if "T" in m]
        if not mods:
            continue
        ks = [int(m["module"]) for m in mods]
        line = ax.plot(ks, [int(m["T"]) for m in mods], marker="o", label=str(d))[0]
        stops = [(int(m["module"]), int(m["T"])) for m in mods if m.get("stop")]
        if stops:
            ax.scatter(*zip(*stops), marker="x", s=60, color=line.get_color(), zorder=3)
    ax.set(xlabel="module k", ylabel="T_k (snippets)", title="wOCC-WS thresholds per module (x: stopped)")
    ax.legend(fontsize=7)
    return [_save(fig, figures / "uvad_thresholds.png")]


def table10_figure(table10: dict[str, Any], figures: Path) -> list[Path]:
    """``table10.png``: per-domain headline metric (%) per compared method, grouped bars, plus the mean."""
    rows = table10.get("rows") or []
    if not rows:
        return []
    plt = _plt()
    domains = sorted({d for r in rows for d in r["per_domain"]}) + ["mean"]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(1.3 * len(domains) + 3, 4))
    for i, r in enumerate(rows):
        vals = [100 * float(r["per_domain"].get(d, {}).get("auc") or np.nan) for d in domains[:-1]]
        vals.append(100 * float(r["mean_auc"]))
        ax.bar(np.arange(len(domains)) + i * width, vals, width, label=r["entry"] + (" [best-test]" if r.get("best_test") else ""))
    ax.set_xticks(np.arange(len(domains)) + 0.4 - width / 2, domains)
    ax.set(ylabel="frame AUC (%)", title=f"Table 10: {table10.get('protocol', '')} comparison")
    ax.legend(fontsize=7)
    return [_save(fig, figures / "table10.png")]


# --------------------------------------------------------------------------------------------------- the command
def make_figures(inp: RunInputs, corpus: str | None, max_videos: int) -> list[Path]:
    """Every figure the run's files allow, under ``RUN_DIR/figures/``."""
    figures = inp.run_dir / "figures"
    written: list[Path] = []
    res = inp.results or {}
    if inp.scores:
        uri = corpus or (res.get("corpus") or {}).get("uri") or ((res.get("config") or {}).get("corpus") or {}).get("uri")
        if not uri:
            raise OmnivadError(f"{inp.run_dir / 'results.json'}: names no corpus; give --corpus for the ground truth")
        gt = test_gt(str(uri), {r.domain for r in inp.scores})
        align = str(res.get("align") or "scores")
        written += curve_figures(inp, gt, figures, align) + timeline_figures(inp, gt, figures, align, max_videos)
    if res:
        written += heatmap_figure(res, figures) + training_figures(res, figures) + uvad_threshold_figure(res, figures)
    if inp.table10:
        written += table10_figure(inp.table10, figures)
    return written


def plot_main(args: argparse.Namespace) -> int:
    from omnivad.report.html import write_report

    inp = read_inputs(args.run_dir)
    written = make_figures(inp, args.corpus, args.max_videos)
    for p in written:
        print(f"figure: {p}")
    if not inp.scores:
        print(f"(no scores.csv in {inp.run_dir}: no ROC/PR curves or timelines)")
    if args.report:
        print(f"report: {write_report(inp, written)}")
    return 0
