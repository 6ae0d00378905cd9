"""The operating threshold of a trained model, chosen on its validation split.

Rule (``f1-optimal-validation-frames``): score every validation video with the method's scoring rule (the
video's domain head when the model has one, else the unseen rule), repeat each snippet score over its frames
(:func:`omnivad.metrics.align_frames`, the run's ``metrics.align``), pool every domain's frames, and take the
score threshold ``t`` maximising the F1 of "frame abnormal ⟺ score >= t". Videos without frame labels fall back
to the video level (max snippet score against the video label, rule ``f1-optimal-validation-videos``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnivad.corpus.format import Video
from omnivad.metrics import align_frames

FRAME_RULE = "f1-optimal-validation-frames"
VIDEO_RULE = "f1-optimal-validation-videos"


def f1_optimal(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(threshold, F1)`` maximising the F1 of ``scores >= threshold`` against binary ``labels``; ties go to the
    highest threshold. A ValueError when the labels have no positive."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if not y.any():
        raise ValueError("no abnormal validation frame or video: the F1-optimal threshold is undefined")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]  # the last index of each distinct score
    tp, n_pred = tp[last], last + 1
    f1 = 2 * tp / (n_pred + y.sum())
    best = int(np.argmax(f1))
    return float(s_sorted[last[best]]), float(f1[best])


def operating_threshold(method: Any, model: torch.nn.Module, videos: dict[str, list[Video]], heads: list[str],
                        align: str = "scores") -> dict[str, Any]:
    """``{rule, value, val_f1, n_videos, n}`` of :data:`FRAME_RULE` (or :data:`VIDEO_RULE`) over ``videos``
    ``{domain: [Video]}``; ``value`` None (with ``reason``) when validation has no abnormal frame."""
    from omnivad.engine.train_loop import score_video

    flat = [(d, v) for d, vids in videos.items() for v in vids]
    scores = [score_video(method, model, v, d if d in heads else None) for d, v in flat]
    frame_level = bool(flat) and all(v.gt is not None for _, v in flat)
    if frame_level:
        pairs = [align_frames(sc, v.gt, align) for sc, (_, v) in zip(scores, flat)]
        s, y = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    else:
        s = np.array([sc.max() for sc in scores], dtype=np.float64)
        y = np.array([v.label for _, v in flat])
    out: dict[str, Any] = {"rule": FRAME_RULE if frame_level else VIDEO_RULE, "n_videos": len(flat), "n": int(s.size)}
    try:
        out["value"], out["val_f1"] = f1_optimal(s, y)
    except ValueError as exc:
        out.update(value=None, val_f1=None, reason=str(exc))
    return out
