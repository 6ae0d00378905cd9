"""Where a run's wall time goes: named phases, summed per process, recorded in the run's history.

The worker times its own phases (``data_read``: its shard of the Ray Datasets into pools; ``setup``: corpus, model,
optimizer, validation videos, restore; ``loop``: the optimizer steps; ``validation``; ``checkpoint``: reports with a
checkpoint before the final one); the driver adds ``dataset_planning`` (building the Ray Datasets),
``worker_start`` (launch until the worker runs), ``finish`` (the final report and checkpoint, Ray Train's shutdown),
``checkpoint_read`` and ``model_write``, and ``total`` (the whole of ``fit``). The phases add up to ``total``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: The phases of one run, in order (``total`` is their wall time, measured separately).
PHASES = ("dataset_planning", "worker_start", "data_read", "setup", "loop", "validation", "checkpoint", "finish",
          "checkpoint_read", "model_write")


@dataclass
class Phases:
    """Seconds per phase (accumulated) and unix-time marks (``start``, ``loop``) of one process."""

    seconds: dict[str, float] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()


def worker_timing(timer: Phases) -> dict[str, float]:
    """The worker's phases up to now; ``loop`` is the time since the loop started less validation and checkpoints;
    ``setup`` the time from the worker's start to the loop less ``data_read``."""
    now = time.time()
    s = dict(timer.seconds)
    s["setup"] = timer.marks["loop"] - timer.marks["start"] - s.get("data_read", 0.0)
    s["loop"] = now - timer.marks["loop"] - s.get("validation", 0.0) - s.get("checkpoint", 0.0)
    return {**s, "worker_start_unix": timer.marks["start"], "worker_end_unix": now}


def driver_timing(worker: dict[str, float], marks: dict[str, float]) -> dict[str, float]:
    """The whole run's phases from the worker's and the driver's unix-time ``marks`` (``start``, ``planned``,
    ``launched``, ``read``, ``written``); ``total`` is ``written - start``."""
    out = {k: float(v) for k, v in worker.items() if not k.endswith("_unix")}
    out["dataset_planning"] = marks["planned"] - marks["start"]
    if "worker_start_unix" in worker:
        out["worker_start"] = worker["worker_start_unix"] - marks["planned"]
        out["finish"] = marks["launched"] - worker["worker_end_unix"]
    out["checkpoint_read"] = marks["read"] - marks["launched"]
    out["model_write"] = marks["written"] - marks["read"]
    out["total"] = marks["written"] - marks["start"]
    return {k: round(out[k], 4) for k in (*PHASES, "total") if k in out}


def describe(timing: dict[str, float]) -> str:
    """One log line: each phase's seconds and share of the total."""
    total = max(timing.get("total", 0.0), 1e-9)
    parts = [f"{k} {v:.2f}s ({100 * v / total:.0f}%)" for k, v in timing.items() if k != "total"]
    return f"total {timing.get('total', 0.0):.2f}s: " + ", ".join(parts)
