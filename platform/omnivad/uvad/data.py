"""What the UVAD loop sees of a domain: pooled training snippets (never their labels), wOCC objects and
how objects map to snippets, and the test split for evaluation.

Training videos are read with a column projection that leaves out ``label``, ``category`` and ``gt``:
nothing in this module can hand a training label to the loop. :func:`train_snippet_gt` reads the
training frame ground truth for *analysis only* (pseudo-label precision in the records) and is
switched off with ``analysis=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from omnivad.corpus.format import FRAMES_PER_SNIPPET, Corpus, feature_arrays

TRAIN_COLUMNS = ["video_id", "n_snippets", "n_crops", "features"]


@dataclass
class SnippetSet:
    """Snippets of one domain/split pooled in corpus order: x (N, C) crop-averaged, per-video offsets, and (when
    kept, ``uvad.ws_input=crops``) every crop ``crops`` (N, K, C)."""

    x: np.ndarray
    video_ids: list[str]
    offsets: np.ndarray  # (V+1,)
    crops: np.ndarray | None = None

    def ws_input(self, kind: str) -> np.ndarray:
        """What the WS model reads (§3.3): every crop (N, K, C) for ``crops`` (x as one crop when none were
        kept), the crop means (N, C) for ``mean``."""
        if kind == "mean":
            return self.x
        return self.crops if self.crops is not None else self.x[:, None]

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per-video slices of a pooled (N, ...) array."""
        return {v: values[a:b] for v, a, b in zip(self.video_ids, self.offsets[:-1], self.offsets[1:])}


def load_snippets(corpus: Corpus, domain: str, split: str, keep_crops: bool = False) -> SnippetSet:
    """Features only (``TRAIN_COLUMNS``): labels and ground truth are never read here. ``keep_crops``: also every
    crop (N, K, C), which needs one crop count over the domain's videos."""
    table = corpus.table(domain, split, columns=TRAIN_COLUMNS)
    ids = table.column("video_id").to_pylist()
    means, kept = [], []
    for a in feature_arrays(table):  # (T, K, C) per video, read one at a time
        means.append(a.mean(1))
        if keep_crops:
            kept.append(a)
    order = np.argsort(np.asarray(ids), kind="stable")
    xs = [means[i] for i in order]
    lengths = np.array([x.shape[0] for x in xs], dtype=np.int64)
    x = np.concatenate(xs).astype(np.float32) if xs else np.zeros((0, corpus.feature_dim), np.float32)
    crops = None
    if keep_crops and xs:
        counts = sorted({a.shape[1] for a in kept})
        if len(counts) > 1:
            raise ValueError(f"corpus {corpus.uri}: domain {domain!r} {split}: videos have {counts} crops; "
                             "uvad.ws_input=crops needs one crop count (uvad.ws_input=mean averages them)")
        if counts != [1]:  # one crop: x is that crop (SnippetSet.ws_input)
            crops = np.concatenate([kept[i] for i in order]).astype(np.float32)
    return SnippetSet(x, [ids[i] for i in order], np.concatenate([[0], np.cumsum(lengths)]), crops)


def test_videos(corpus: Corpus, domain: str) -> list[tuple[str, np.ndarray, int]]:
    """(video_id, frame gt, label) of the test split (evaluation only), sorted by id like the snippets."""
    rows = corpus.table(domain, "test", columns=["video_id", "label", "gt"]).to_pylist()
    rows = [r for r in rows if r["gt"] is not None]
    return [(r["video_id"], np.asarray(r["gt"], np.uint8), int(r["label"])) for r in sorted(rows, key=lambda r: r["video_id"])]


def train_snippet_gt(corpus: Corpus, domain: str, snippets: SnippetSet) -> np.ndarray | None:
    """Analysis only: per-snippet ground truth (any abnormal frame) of the training snippets, or None."""
    rows = {r["video_id"]: r["gt"] for r in corpus.table(domain, "train", columns=["video_id", "gt"]).to_pylist()}
    out = []
    for vid, t in zip(snippets.video_ids, snippets.lengths()):
        gt = rows.get(vid)
        if gt is None:
            return None
        g = np.zeros(int(t) * FRAMES_PER_SNIPPET, np.uint8)
        g[: min(len(gt), g.size)] = np.asarray(gt, np.uint8)[: g.size]
        out.append(g.reshape(int(t), FRAMES_PER_SNIPPET).max(1))
    return np.concatenate(out) if out else None


# ---------------------------------------------------------------------------------------------- wOCC objects
@dataclass
class Objects:
    """wOCC objects of one split and their relation to the pooled snippets.

    ``x`` (M, ...) training objects; ``lo``/``hi`` the snippet range [lo, hi) each covers (for Eq. 6;
    hi == lo means "only frames past the video end", weight 0); ``score_x`` the objects scored for Eq. 3.
    """

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    score_x: np.ndarray
    kind: str = "snippet"
    pose: dict[str, Any] = field(default_factory=dict)

    def weights_from_snippets(self, s: np.ndarray) -> np.ndarray:
        """Eq. 6 (code form): w_i = max of s over the snippets object i covers."""
        if self.kind == "snippet":
            return np.asarray(s, np.float32)
        w = np.zeros(len(self.lo), np.float32)
        width = int((self.hi - self.lo).max()) if len(self.lo) else 0
        for j in range(width):
            idx = np.minimum(self.lo + j, np.maximum(self.hi - 1, 0))
            valid = self.hi > self.lo
            w = np.where(valid, np.maximum(w, s[idx]), w)
        return w.astype(np.float32)

    def snippet_scores(self, a: np.ndarray, snippets: SnippetSet) -> np.ndarray:
        """Object scores of ``score_x`` → â per snippet (identity for snippet objects; §3.2.1 for poses)."""
        if self.kind == "snippet":
            return np.asarray(a, np.float64)
        return pose_snippet_scores(a, self.pose["score_video"], self.pose["score_start"], self.pose["seg_len"],
                                   snippets)


def snippet_objects(snippets: SnippetSet) -> Objects:
    j = np.arange(snippets.n)
    return Objects(snippets.x, j, j + 1, snippets.x)


def pose_objects(tracks: dict[str, Any], snippets: SnippetSet, cfg: Any, flip: bool = True) -> Objects:
    """STG-NF objects: training windows (stride ``seg_stride``, + horizontal flips) and scoring windows
    (stride 1), with the per-video frame → snippet alignment f ↦ min(⌊f/16⌋, T_v − 1) (§9.15)."""
    from omnivad.corpus.poses import pose_windows

    xs, los, his, sx, sv, ss = [], [], [], [], [], []
    for v, (vid, t_v) in enumerate(zip(snippets.video_ids, snippets.lengths())):
        base = int(snippets.offsets[v])
        tr = tracks.get(vid, {})
        x, starts = pose_windows(tr, cfg.seg_len, cfg.seg_stride, cfg.resolution)
        end = starts + cfg.seg_len - 1
        limit = FRAMES_PER_SNIPPET * int(t_v)
        if cfg.tail_fill == "zero":
            first = np.where(starts < limit, starts // FRAMES_PER_SNIPPET, 0)
            last = np.where(starts < limit, np.minimum(end, limit - 1) // FRAMES_PER_SNIPPET + 1, 0)
        else:
            first = np.minimum(starts // FRAMES_PER_SNIPPET, t_v - 1)
            last = np.minimum(end // FRAMES_PER_SNIPPET, t_v - 1) + 1
        xs.append(x)
        los.append(base + first)
        his.append(base + last)
        x1, s1 = pose_windows(tr, cfg.seg_len, 1, cfg.resolution)
        sx.append(x1)
        sv.append(np.full(len(s1), v))
        ss.append(s1)
    x = np.concatenate(xs)
    lo, hi = np.concatenate(los), np.concatenate(his)
    if flip:
        flipped = x.copy()
        flipped[:, 0] = -flipped[:, 0]
        x, lo, hi = np.concatenate([x, flipped]), np.concatenate([lo, lo]), np.concatenate([hi, hi])
    return Objects(x.astype(np.float32), lo, hi, np.concatenate(sx).astype(np.float32), kind="pose",
                   pose={"score_video": np.concatenate(sv), "score_start": np.concatenate(ss), "seg_len": cfg.seg_len})


def pose_snippet_scores(nll: np.ndarray, video: np.ndarray, start: np.ndarray, seg_len: int,
                        snippets: SnippetSet) -> np.ndarray:
    """§3.2.1 code pipeline: NLL at the window centre, max over persons per frame (frames without a
    person get the most normal value), Gaussian smoothing σ = 1..6, mean per 16 frames, T_v snippets."""
    out = np.zeros(snippets.n)
    normal = float(np.min(nll)) if len(nll) else 0.0
    for v, t_v in enumerate(snippets.lengths()):
        t_v = int(t_v)
        frames = np.full(t_v * FRAMES_PER_SNIPPET, -np.inf)
        sel = video == v
        centre = np.minimum(start[sel] + seg_len // 2, frames.size - 1)
        np.maximum.at(frames, centre, nll[sel])
        frames[~np.isfinite(frames)] = normal
        for sigma in range(1, 7):
            frames = gaussian_filter1d(frames, sigma)
        a, b = snippets.offsets[v], snippets.offsets[v + 1]
        out[a:b] = frames.reshape(t_v, FRAMES_PER_SNIPPET).mean(1)
    return out
