"""Frame-level anomaly-detection metrics: snippet scores → frame scores → pooled AUC / AP.

The protocol follows the community evaluation code (RTFM ``test_10crop.py``, BN-WVAD, MDVAD §6.2 / A27):

1. a video's snippet scores ``(T,)`` or ``(T, crops)`` are averaged over crops;
2. each snippet score is repeated ``frames_per_snippet`` (16) times;
3. scores and ground truth are aligned (``metrics.align``). ``scores`` (default; MDVAD A27, BN-WVAD's code):
   the frame scores are truncated to the gt length, or padded with the last score, so every gt frame is
   scored. ``gt`` (RTFM's ``test_10crop.py``, whose gt files hold 16·T labels per video): the gt is
   truncated to the 16·T scored frames, or padded with normal (0) frames up to 16·T;
4. the frame scores and ground truth of **every** test video of a domain are concatenated, in the
   corpus order, and one metric is computed over the pooled frames (this is *not* the mean of
   per-video AUCs).

Metrics (all fractions in ``[0, 1]``, never percentages):

``auc``
    ``sklearn.metrics.roc_auc_score`` over the pooled frames (the MDVAD comparison metric, XD included).
``ap``
    ``sklearn.metrics.average_precision_score`` (step-wise AP).
``pr_auc``
    BN-WVAD's "AP": ``precision_recall_curve`` then ``sklearn.metrics.auc(recall, precision)``, the
    trapezoidal area under the PR curve. Reported separately so numbers stay comparable with BN-WVAD.
``auc_abnormal``
    AUC over the frames of abnormal videos only (BN-WVAD's AUC_abn); ``None`` when it cannot be
    computed (no abnormal video, or their frames hold a single class).
``per_category`` (:func:`category_metrics`)
    For each abnormal category c of a domain's test videos: ``auc`` and ``ap`` over the pooled frames of the
    videos of c **plus every normal test video of the domain** (the usual per-class protocol, BN-WVAD Table 9,
    MDVAD Fig. A4, CoMo Fig. 6); a multi-label (XD) video counts in each of its categories. ``negatives="none"``
    (the alternative reading) pools the videos of c only. ``None`` where the pool holds a single class.

Score files: one ``<video_id>.npy`` per test video holding the snippet scores. Video ids are unique
within a domain but may collide across domains, so a score may be keyed by ``video_id`` or by
``domain/video_id``; :func:`load_score_dir` produces the latter for files in a sub-directory named
after the domain.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from omnivad import storage
from omnivad.corpus.format import FRAMES_PER_SNIPPET, Corpus
from omnivad.errors import MetricError

ALIGNMENTS = ("scores", "gt")

__all__ = [
    "ALIGNMENTS",
    "align_frames",
    "frame_scores",
    "frame_metrics",
    "evaluate_domain",
    "evaluate_corpus",
    "category_metrics",
    "load_score_dir",
    "aggregate_folds",
    "evaluate_dirs",
]

_MAX_NAMED = 10


def _name_some(items: Sequence[str], what: str) -> str:
    """``"3 videos without scores: a, b, c"`` (the first ``_MAX_NAMED`` named, then ``...``)."""
    items = sorted(items)
    shown = ", ".join(items[:_MAX_NAMED])
    more = f", ... ({len(items) - _MAX_NAMED} more)" if len(items) > _MAX_NAMED else ""
    return f"{len(items)} {what}: {shown}{more}"


# --------------------------------------------------------------------------------------------------
# One video


def frame_scores(
    snippet_scores: np.ndarray, n_frames: int, frames_per_snippet: int = FRAMES_PER_SNIPPET
) -> np.ndarray:
    """Expand snippet scores to ``n_frames`` frame scores (float64, shape ``(n_frames,)``).

    ``snippet_scores`` is ``(T,)`` or ``(T, crops)``; crops are averaged, each snippet score is
    repeated ``frames_per_snippet`` times, and the result is truncated to ``n_frames`` or padded with
    its last score (MDVAD A27). A ``(T, 1)`` array is treated like ``(T,)``.
    """
    s = np.asarray(snippet_scores, dtype=np.float64)
    if s.ndim == 2:
        s = s.mean(axis=1)
    elif s.ndim != 1:
        raise MetricError(f"snippet scores must be (T,) or (T, crops), got shape {tuple(s.shape)}")
    if s.shape[0] == 0:
        raise MetricError("snippet scores are empty (T = 0)")
    if frames_per_snippet < 1:
        raise MetricError(f"frames_per_snippet must be >= 1, got {frames_per_snippet}")
    if n_frames < 0:
        raise MetricError(f"n_frames must be >= 0, got {n_frames}")
    frames = np.repeat(s, frames_per_snippet)
    if frames.shape[0] >= n_frames:
        return frames[:n_frames]
    return np.concatenate([frames, np.full(n_frames - frames.shape[0], frames[-1])])


def align_frames(
    snippet_scores: np.ndarray, gt: np.ndarray, align: str = "scores", frames_per_snippet: int = FRAMES_PER_SNIPPET
) -> tuple[np.ndarray, np.ndarray]:
    """(frame scores, frame gt) of one video, of equal length.

    ``align="scores"``: :func:`frame_scores` fitted to ``len(gt)`` (the gt unchanged). ``align="gt"``
    (RTFM): the ``16·T`` repeated scores unchanged, the gt truncated to ``16·T`` or padded with 0.
    """
    g = np.asarray(gt).ravel()
    if align == "scores":
        return frame_scores(snippet_scores, g.shape[0], frames_per_snippet), g
    if align != "gt":
        raise MetricError(f"metrics.align: expected one of {', '.join(ALIGNMENTS)}, got {align!r}")
    s = np.asarray(snippet_scores, dtype=np.float64)
    n = (s.shape[0] if s.ndim >= 1 else 0) * frames_per_snippet
    fs = frame_scores(s, n, frames_per_snippet)
    if g.shape[0] >= n:
        return fs, g[:n]
    return fs, np.concatenate([g, np.zeros(n - g.shape[0], dtype=g.dtype)])


# --------------------------------------------------------------------------------------------------
# Pooled metrics


def _check_binary(gt: np.ndarray, domain: str | None) -> np.ndarray:
    where = f"domain {domain!r}: " if domain else ""
    values = np.unique(gt)
    if not np.isin(values, (0, 1)).all():
        raise MetricError(f"{where}ground truth must be 0/1 frame labels, found values {values[:10].tolist()}")
    if values.size < 2:
        kind = "abnormal" if values.size and values[0] == 1 else "normal"
        raise MetricError(
            f"{where}the ground truth holds only {kind} frames ({gt.size} frames); frame-level AUC/AP need "
            "both normal and abnormal frames"
        )
    return gt.astype(np.int64)


def frame_metrics(scores: np.ndarray, gt: np.ndarray, domain: str | None = None) -> dict[str, float]:
    """``{"auc", "ap", "pr_auc"}`` of frame ``scores`` against 0/1 frame ground truth ``gt``.

    ``auc`` is ``roc_auc_score``, ``ap`` is ``average_precision_score`` and ``pr_auc`` is BN-WVAD's
    trapezoidal PR area (``precision_recall_curve`` then ``auc(recall, precision)``). Raises
    :class:`MetricError` when the lengths differ, a score is not finite, or ``gt`` has a single class
    (``domain``, when given, is named in the message).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    g = np.asarray(gt).ravel()
    where = f"domain {domain!r}: " if domain else ""
    if s.shape != g.shape:
        raise MetricError(f"{where}{s.size} frame scores but {g.size} ground-truth frames")
    if not np.isfinite(s).all():
        raise MetricError(f"{where}{int((~np.isfinite(s)).sum())} frame scores are NaN or infinite")
    g = _check_binary(g, domain)
    precision, recall, _ = skm.precision_recall_curve(g, s)
    return {
        "auc": float(skm.roc_auc_score(g, s)),
        "ap": float(skm.average_precision_score(g, s)),
        "pr_auc": float(skm.auc(recall, precision)),
    }


def evaluate_domain(
    videos: Sequence[tuple[str, np.ndarray, int]],
    scores: Mapping[str, np.ndarray],
    domain: str,
    frames_per_snippet: int = FRAMES_PER_SNIPPET,
    align: str = "scores",
) -> dict[str, Any]:
    """Pooled metrics of one domain.

    ``videos`` lists ``(video_id, gt, label)`` in evaluation order; ``scores[video_id]`` holds that
    video's snippet scores. Every video's frame scores and ground truth (:func:`align_frames`, ``align``)
    are concatenated in that order before computing the metrics. Returns ``auc``,
    ``ap``, ``pr_auc``, ``auc_abnormal`` (``None`` when not computable), ``n_videos`` and ``n_frames``.
    """
    if not videos:
        raise MetricError(f"domain {domain!r}: no test videos with frame-level ground truth")
    missing = [vid for vid, _, _ in videos if vid not in scores]
    if missing:
        raise MetricError(f"domain {domain!r}: {_name_some(missing, 'videos without scores')}")
    all_s: list[np.ndarray] = []
    all_g: list[np.ndarray] = []
    abnormal: list[bool] = []
    for vid, gt, label in videos:
        try:
            fs, g = align_frames(scores[vid], gt, align, frames_per_snippet)
        except MetricError as exc:
            raise MetricError(f"domain {domain!r}, video {vid!r}: {exc}") from exc
        if not np.isfinite(fs).all():
            raise MetricError(f"domain {domain!r}, video {vid!r}: scores contain NaN or infinite values")
        all_s.append(fs)
        all_g.append(g)
        abnormal.append(int(label) == 1)
    s = np.concatenate(all_s)
    g = np.concatenate(all_g)
    out: dict[str, Any] = dict(frame_metrics(s, g, domain))
    out["auc_abnormal"] = None
    if any(abnormal):
        s_ab = np.concatenate([x for x, a in zip(all_s, abnormal) if a])
        g_ab = np.concatenate([x for x, a in zip(all_g, abnormal) if a])
        if np.unique(g_ab).size == 2:
            out["auc_abnormal"] = float(skm.roc_auc_score(g_ab.astype(np.int64), s_ab))
    out["n_videos"] = len(videos)
    out["n_frames"] = int(g.shape[0])
    return out


#: Category labels that do not name an abnormal category.
NON_CATEGORIES = ("", "Normal")
CATEGORY_NEGATIVES = ("normal", "none")


def category_metrics(
    videos: Sequence[tuple[str, np.ndarray, int, Sequence[str]]],
    scores: Mapping[str, np.ndarray],
    domain: str,
    frames_per_snippet: int = FRAMES_PER_SNIPPET,
    align: str = "scores",
    negatives: str = "normal",
) -> dict[str, dict[str, Any]]:
    """Per-category ``{category: {auc, ap, n_videos, n_category_videos}}`` of one domain, categories sorted.

    ``videos`` lists ``(video_id, gt, label, categories)``; every abnormal video (label 1) counts in each of its
    categories (``""``/``"Normal"`` are not categories; an abnormal video without one counts in none).
    ``negatives="normal"`` pools the frames of the category's videos with those of every normal video (label 0)
    of the domain; ``"none"`` the category's videos only. ``auc``/``ap`` are ``None`` when the pooled frames
    hold a single class. ``{}`` when no abnormal video has a category."""
    if negatives not in CATEGORY_NEGATIVES:
        raise MetricError(f"per-category negatives: expected one of {', '.join(CATEGORY_NEGATIVES)}, got {negatives!r}")
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    members: dict[str, list[str]] = {}
    normal: list[str] = []
    for vid, gt, label, cats in videos:
        try:
            frames[vid] = align_frames(scores[vid], gt, align, frames_per_snippet)
        except (KeyError, MetricError) as exc:
            raise MetricError(f"domain {domain!r}, video {vid!r}: no usable scores for per-category metrics ({exc})") from exc
        if int(label) == 0:
            normal.append(vid)
            continue
        for c in dict.fromkeys(cats):
            if c not in NON_CATEGORIES:
                members.setdefault(c, []).append(vid)
    out: dict[str, dict[str, Any]] = {}
    for c in sorted(members):
        pool = members[c] + (normal if negatives == "normal" else [])
        s = np.concatenate([frames[v][0] for v in pool])
        g = np.concatenate([frames[v][1] for v in pool]).astype(np.int64)
        ok = np.unique(g).size == 2 and np.isfinite(s).all()
        out[c] = {"auc": float(skm.roc_auc_score(g, s)) if ok else None,
                  "ap": float(skm.average_precision_score(g, s)) if ok else None,
                  "n_videos": len(pool), "n_category_videos": len(members[c])}
    return out


# --------------------------------------------------------------------------------------------------
# A corpus


@dataclass
class _TestVideo:
    video_id: str
    label: int
    n_snippets: int
    gt: np.ndarray | None
    categories: list[str]


def _test_videos(
    corpus: Corpus, domains: Sequence[str] | None, split: str
) -> tuple[dict[str, list[_TestVideo]], list[str]]:
    """``({domain: videos of the split}, evaluated domains)``; features are not read.

    With ``domains=None`` every domain whose split has at least one video with ground truth is
    evaluated; a domain named explicitly without such videos is an error.
    """
    explicit = domains is not None
    names = list(domains) if domains is not None else corpus.domains
    unknown = [d for d in names if d not in corpus.domains]
    if unknown:
        raise MetricError(
            f"{corpus.uri}: unknown domains {', '.join(unknown)} (domains: {', '.join(corpus.domains) or 'none'})"
        )
    by_domain: dict[str, list[_TestVideo]] = {}
    for d in corpus.domains:  # every domain, so scores of non-evaluated domains are recognised
        rows = corpus.table(d, split, columns=["video_id", "label", "n_snippets", "gt", "categories"]).to_pylist()
        by_domain[d] = [
            _TestVideo(
                video_id=r["video_id"],
                label=int(r["label"]),
                n_snippets=int(r["n_snippets"]),
                gt=None if r["gt"] is None else np.asarray(r["gt"], dtype=np.uint8),
                categories=list(r["categories"] or []),
            )
            for r in rows
        ]
    evaluated = []
    for d in names:
        if any(v.gt is not None for v in by_domain[d]):
            evaluated.append(d)
        elif explicit:
            raise MetricError(f"{corpus.uri}: domain {d!r} has no {split!r} videos with frame-level ground truth")
    if not evaluated:
        raise MetricError(f"{corpus.uri}: no domain has {split!r} videos with frame-level ground truth")
    return by_domain, evaluated


def _evaluate(
    by_domain: Mapping[str, list[_TestVideo]],
    evaluated: Sequence[str],
    scores: Mapping[str, np.ndarray],
    frames_per_snippet: int,
    where: str,
    align: str = "scores",
) -> dict[str, Any]:
    resolved, used = _resolve_scores(by_domain, evaluated, scores, where)
    _check_unknown_keys(by_domain, scores, used, where)
    _check_score_lengths(by_domain, evaluated, resolved, where)
    per_domain: dict[str, dict[str, Any]] = {}
    per_category: dict[str, dict[str, dict[str, Any]]] = {}
    for d in evaluated:
        vids = [(v.video_id, v.gt, v.label) for v in by_domain[d] if v.gt is not None]
        per_domain[d] = evaluate_domain(vids, resolved[d], d, frames_per_snippet, align)
        cats = category_metrics([(v.video_id, v.gt, v.label, v.categories) for v in by_domain[d] if v.gt is not None],
                                resolved[d], d, frames_per_snippet, align)
        if cats:
            per_category[d] = cats
    out: dict[str, Any] = {
        "per_domain": per_domain,
        "mean_auc": float(np.mean([r["auc"] for r in per_domain.values()])),
        "mean_ap": float(np.mean([r["ap"] for r in per_domain.values()])),
    }
    if per_category:
        out["per_category"] = per_category
    return out


def _resolve_scores(
    by_domain: Mapping[str, list[_TestVideo]],
    evaluated: Sequence[str],
    scores: Mapping[str, np.ndarray],
    where: str,
) -> tuple[dict[str, dict[str, np.ndarray]], set[str]]:
    """Each evaluated video's score: key ``domain/video_id`` first, then ``video_id``.

    Returns the scores of the videos with ground truth per domain and the keys used; a bare key
    matching videos of several domains, or a video with ground truth but no score, is an error."""
    owners: dict[str, list[str]] = {}  # bare key -> evaluated domains with a video of that id lacking a qualified key
    resolved: dict[str, dict[str, np.ndarray]] = {}
    used: set[str] = set()
    missing: list[str] = []
    for d in evaluated:
        resolved[d] = {}
        for v in by_domain[d]:
            q = f"{d}/{v.video_id}"
            if q in scores:
                key = q
            elif v.video_id in scores:
                key = v.video_id
                owners.setdefault(key, []).append(d)
            else:
                if v.gt is not None:
                    missing.append(q)
                continue
            used.add(key)
            if v.gt is not None:
                resolved[d][v.video_id] = scores[key]
    ambiguous = {k: ds for k, ds in owners.items() if len(ds) > 1}
    if ambiguous:
        names = [f"{k} ({', '.join(ds)})" for k, ds in ambiguous.items()]
        raise MetricError(
            f"{where}: {_name_some(names, 'score keys match videos of several domains')}; "
            "key those scores as 'domain/video_id' (sub-directories named after the domain)"
        )
    if missing:
        raise MetricError(f"{where}: {_name_some(missing, 'test videos without scores')}")
    return resolved, used


def _check_unknown_keys(
    by_domain: Mapping[str, list[_TestVideo]], scores: Mapping[str, np.ndarray], used: set[str], where: str
) -> None:
    """Keys naming a video of this split that were not used (a domain not evaluated now, or a bare id
    shadowed by its qualified key) are accepted and ignored; any other key is an error."""
    known: set[str] = set()
    for d, vids in by_domain.items():
        for v in vids:
            known.add(f"{d}/{v.video_id}")
            known.add(v.video_id)
    extra = [k for k in scores if k not in used and k not in known]
    if extra:
        raise MetricError(f"{where}: {_name_some(extra, 'scores for ids that are not test videos')}")


def _check_score_lengths(
    by_domain: Mapping[str, list[_TestVideo]],
    evaluated: Sequence[str],
    resolved: Mapping[str, Mapping[str, np.ndarray]],
    where: str,
) -> None:
    """A score array must have one row per snippet."""
    wrong = []
    for d in evaluated:
        for v in by_domain[d]:
            if v.video_id in resolved[d]:
                arr = np.asarray(resolved[d][v.video_id])
                n = arr.shape[0] if arr.ndim >= 1 else 0
                if n != v.n_snippets or arr.ndim not in (1, 2):
                    wrong.append(
                        f"{d}/{v.video_id}: scores shape {tuple(arr.shape)}, video has T={v.n_snippets} snippets"
                    )
    if wrong:
        more = f"; ... ({len(wrong) - _MAX_NAMED} more)" if len(wrong) > _MAX_NAMED else ""
        shown = "; ".join(wrong[:_MAX_NAMED]) + more
        raise MetricError(f"{where}: {len(wrong)} score arrays do not match their video's snippet count: {shown}")


def evaluate_corpus(
    corpus: Corpus,
    scores: Mapping[str, np.ndarray],
    domains: Sequence[str] | None = None,
    split: str = "test",
    align: str = "scores",
) -> dict[str, Any]:
    """Per-domain pooled metrics of ``scores`` over the ``split`` videos of ``corpus`` that have gt.

    ``scores`` maps ``video_id`` or ``domain/video_id`` to snippet scores ``(T,)`` / ``(T, crops)``;
    the qualified key wins when both exist. A bare ``video_id`` that matches videos of several
    evaluated domains is ambiguous (an error). ``domains`` defaults to every domain whose split has
    ground truth. Scores for videos of the split in domains not evaluated are ignored; scores for
    split videos without gt are accepted and ignored.

    Raises :class:`MetricError` naming the videos when scores are missing, when a key is not a video
    of the split (extra), or when a score array's length differs from the video's snippet count.
    Returns ``{"per_domain": {d: {auc, ap, pr_auc, auc_abnormal, n_videos, n_frames}}, "mean_auc",
    "mean_ap"}`` (means over the evaluated domains), plus ``"per_category": {d: category_metrics(...)}`` for the
    domains whose abnormal test videos carry categories.
    """
    by_domain, evaluated = _test_videos(corpus, domains, split)
    return _evaluate(by_domain, evaluated, scores, corpus.manifest.frames_per_snippet, corpus.uri, align)


# --------------------------------------------------------------------------------------------------
# Score directories and folds


def _load_npy(fs: Any, path: str, shown: str) -> np.ndarray:
    try:
        with fs.open(path, "rb") as fh:
            data = fh.read()
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise MetricError(f"{shown}: cannot read scores ({type(exc).__name__}: {exc})") from exc
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
        raise MetricError(f"{shown}: expected a numeric array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


def load_score_dir(path: str) -> dict[str, np.ndarray]:
    """Read ``<video_id>.npy`` score files from a local directory or an ``s3://`` prefix.

    Files at the top level are keyed ``video_id``; files in a sub-directory ``<domain>/`` are keyed
    ``domain/video_id`` (deeper levels are not read). Files not ending in ``.npy`` and hidden files
    are ignored. Raises :class:`MetricError` when the directory does not exist, holds no score file,
    or a file cannot be read (naming it).
    """
    fs, root = storage.filesystem(path)
    remote = path.startswith("s3://")

    def shown(p: str) -> str:
        return "s3://" + p if remote else p

    try:
        if remote:  # s3fs caches listings per process; score files may have been written since
            fs.invalidate_cache(root)
        if not fs.isdir(root):
            raise MetricError(f"{path}: score directory not found")
        top = fs.ls(root, detail=True)
    except MetricError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MetricError(f"{path}: cannot list score directory ({exc})") from exc
    out: dict[str, np.ndarray] = {}
    for entry in sorted(top, key=lambda e: e["name"]):
        name = posixpath.basename(entry["name"].rstrip("/"))
        if name.startswith("."):
            continue
        if entry["type"] == "directory":
            try:
                inner = fs.ls(entry["name"], detail=True)
            except Exception as exc:  # noqa: BLE001
                raise MetricError(f"{shown(entry['name'])}: cannot list ({exc})") from exc
            for sub in sorted(inner, key=lambda e: e["name"]):
                fname = posixpath.basename(sub["name"].rstrip("/"))
                if sub["type"] == "file" and fname.endswith(".npy") and not fname.startswith("."):
                    out[f"{name}/{fname[:-4]}"] = _load_npy(fs, sub["name"], shown(sub["name"]))
        elif name.endswith(".npy"):
            out[name[:-4]] = _load_npy(fs, entry["name"], shown(entry["name"]))
    if not out:
        raise MetricError(f"{path}: no .npy score files found")
    return out


def aggregate_folds(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and **sample** standard deviation (``ddof=1``) over folds of :func:`evaluate_corpus` results.

    The folds are a sample of the possible splits, so the std estimates the spread of a new fold; with a
    single fold it is not measured and is ``None`` (never 0). Every result must cover the same domains.
    Returns ``{"per_domain": {d: {auc, auc_std, ap, ap_std, pr_auc, pr_auc_std, auc_abnormal,
    auc_abnormal_std, n}}, "mean_auc", "mean_auc_std", "mean_ap", "mean_ap_std", "folds": n}``.
    """
    if not results:
        raise MetricError("no fold results to aggregate")
    domains = list(results[0]["per_domain"])
    for i, r in enumerate(results[1:], start=1):
        if set(r["per_domain"]) != set(domains):
            raise MetricError(
                f"fold {i} covers domains {sorted(r['per_domain'])}, fold 0 covers {sorted(domains)}"
            )

    def stats(vals: list[float]) -> tuple[float, float | None]:
        arr = np.asarray(vals, dtype=np.float64)
        return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)

    per_domain: dict[str, dict[str, Any]] = {}
    for d in domains:
        entry: dict[str, Any] = {"n": len(results)}
        for m in ("auc", "ap", "pr_auc", "auc_abnormal"):
            vals = [r["per_domain"][d].get(m) for r in results]
            if all(v is not None for v in vals):
                entry[m], entry[f"{m}_std"] = stats(vals)
        per_domain[d] = entry
    out: dict[str, Any] = {"per_domain": per_domain}
    for m in ("mean_auc", "mean_ap"):
        vals = [r[m] for r in results if m in r]
        if len(vals) == len(results):
            out[m], out[f"{m}_std"] = stats(vals)
    out["folds"] = len(results)
    return out


def evaluate_dirs(
    corpus_uri: str, score_dirs: Sequence[str], domains: Sequence[str] | None = None, split: str = "test",
    align: str = "scores",
) -> dict[str, Any]:
    """Evaluate one score directory per fold against the corpus at ``corpus_uri``.

    One directory: the :func:`evaluate_corpus` result plus ``scores`` (the directory), ``corpus``
    and ``fingerprint``. Several: the :func:`aggregate_folds` means at the top level (``per_domain``
    with ``auc``/``ap`` and their ``_std``, ``mean_auc``, ``mean_auc_std``...), ``n_folds``, and
    ``folds``: the list of per-fold results (each with its ``scores`` directory). This is what
    ``omnivad evaluate --corpus URI --scores DIR [--scores DIR2 ...]`` writes.
    """
    if not score_dirs:
        raise MetricError("no score directory given")
    corpus = Corpus.open(corpus_uri)
    by_domain, evaluated = _test_videos(corpus, domains, split)
    fps = corpus.manifest.frames_per_snippet
    folds = []
    for d in score_dirs:
        res = _evaluate(by_domain, evaluated, load_score_dir(d), fps, f"{d} vs {corpus_uri}", align)
        folds.append({**res, "scores": d})
    meta = {"corpus": corpus_uri, "fingerprint": corpus.fingerprint(), "split": split, "align": align}
    if len(folds) == 1:
        return {**folds[0], **meta}
    agg = aggregate_folds(folds)
    n = agg.pop("folds")
    return {**agg, **meta, "n_folds": n, "folds": folds}
