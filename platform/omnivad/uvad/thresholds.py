"""Pseudo-labels and adaptive thresholding (spec wocc_ws.md §3.2, §3.7). Pure numpy, no labels anywhere.

Snippet scores are pooled over a domain's training videos: index j = 0..N-1 in corpus order.
"""

from __future__ import annotations

import math

import numpy as np


def initial_threshold(q: float, n: int) -> int:
    """T_1 = ⌈Q·N⌉."""
    return int(math.ceil(q * n - 1e-9))


def rank_desc(scores: np.ndarray) -> np.ndarray:
    """Snippet indices sorted by score, highest first (ties by index)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_set(scores: np.ndarray, q: float) -> np.ndarray:
    """𝒜_m: the ⌈Q·N⌉ snippets with the highest score (sorted indices)."""
    return np.sort(rank_desc(scores)[: initial_threshold(q, len(scores))])


def hard_labels(scores: np.ndarray, t: int, q: float | None = None) -> np.ndarray:
    """Eq. 3: l_j = 1 iff rank(j) ≤ T. With ``q`` (module 1) the code's rounding: the top ⌈QN⌉ are
    abnormal and the bottom ⌈(1−Q)N⌉ normal, the overlap normal (§9.13)."""
    n = len(scores)
    order = rank_desc(scores)
    labels = np.zeros(n, dtype=np.int8)
    labels[order[:t]] = 1
    if q is not None:
        n_normal = int(math.ceil((1 - q) * n - 1e-9))
        labels[order[n - n_normal :]] = 0
    return labels


def cleanup(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§3.2.4 (code only): one left-to-right pass over the concatenated labels removing isolated flips."""
    lab = np.asarray(labels).copy()
    sc = np.asarray(scores, dtype=np.float64).copy()
    for i in range(2, len(lab) - 2):
        if lab[i - 1] == lab[i + 1] != lab[i]:
            lab[i] = lab[i - 1]
            sc[i] = (sc[i - 1] + sc[i + 1]) / 2
        elif lab[i] not in (lab[i - 2], lab[i - 1], lab[i + 1]):
            lab[i] = lab[i - 1]
            sc[i] = sc[i - 1]
    return lab, sc


def should_stop(sizes: list[int], t1: int, ratio: float, reference: str = "first-measured") -> tuple[bool, int | None, int | None]:
    """Stopping rule after a module; ``sizes[k-1] = |I_k|`` (= T_{k+1}). Returns (stop, drop, reference drop).

    ``first-measured`` (code, §9.9): the reference is T_2 − T_3 and the test starts after module 3.
    ``first`` (paper): the reference is T_1 − T_2 and the test starts after module 2.
    """
    if reference == "first-measured":
        if len(sizes) < 3:
            return False, (sizes[-2] - sizes[-1]) if len(sizes) >= 2 else None, None
        ref = sizes[0] - sizes[1]
    else:
        if len(sizes) < 2:
            return False, None, None
        ref = t1 - sizes[0]
    drop = sizes[-2] - sizes[-1]
    return drop <= ratio * ref, drop, ref
