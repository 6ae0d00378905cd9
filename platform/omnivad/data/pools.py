"""Per-(domain, label) pools of resampled training videos (numpy only: Ray Data workers import this
without paying for torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Pool:
    """One (domain, label) pool on a worker: x is ``(n, T, K, C)``, sorted by video id.

    side: the pool's per-snippet side signals, resampled like x: ``{name: (n, T) or (n, T, W)}``.
    """

    ids: list[str]
    x: np.ndarray
    side: dict[str, np.ndarray] = field(default_factory=dict)
