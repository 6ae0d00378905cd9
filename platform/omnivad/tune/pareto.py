"""The Pareto front of a multi-objective search (every objective maximised)."""

from __future__ import annotations

import math
from typing import Any


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (maximisation)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_front(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """The rows no other row dominates on ``keys`` (rows with a missing or NaN value are left out),
    sorted by the first key, best first. Equal points are all kept."""
    pts = [(r, tuple(float(r[k]) for k in keys)) for r in rows
           if all(r.get(k) is not None and not math.isnan(float(r[k])) for k in keys)]
    front = [r for r, p in pts if not any(dominates(q, p) for _, q in pts)]
    return sorted(front, key=lambda r: [-float(r[k]) for k in keys])


def plot_front(rows: list[dict[str, Any]], front: list[dict[str, Any]], keys: tuple[str, str], title: str) -> bytes:
    """PNG bytes: every trial as a point, the front highlighted and joined as a staircase."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = keys
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    pts = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    ax.scatter([100 * r[x] for r in pts], [100 * r[y] for r in pts], c="0.6", s=18, label="trials")
    fx, fy = [100 * r[x] for r in front], [100 * r[y] for r in front]
    ax.plot(fx, fy, "o-", c="tab:red", drawstyle="steps-post", label="Pareto front")
    for r in front:
        ax.annotate(str(r["trial_id"])[-5:], (100 * r[x], 100 * r[y]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{x} (%)")
    ax.set_ylabel(f"{y} (%)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
