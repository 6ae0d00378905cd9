"""One ``omnivad`` logger and Ray's known noise filtered out of local runs.

:func:`logger` is the driver's logger (``[omnivad] ...`` lines on stderr, level from ``--log-level`` or
``OMNIVAD_LOG_LEVEL``, default INFO). :func:`quiet_ray` drops the lines Ray's own actors print that say
nothing about the run (the PlacementGroupCleaner's "Failed to query" spam, the Train controller's transient
"Failed to send resource request" tracebacks, deprecation warnings) from what Ray streams to the driver;
``--log-level DEBUG`` keeps everything. ``--progress`` (``OMNIVAD_PROGRESS=1``) keeps Ray Data's progress bars.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from typing import Any

NAME = "omnivad"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

#: Lines of Ray's own processes that are dropped on local runs (with the traceback lines that follow them).
RAY_NOISE = re.compile(
    r"PlacementGroupCleaner|Failed to query|Failed to send resource request|DeprecationWarning|FutureWarning"
    r"|RayDeprecationWarning|deprecated and will be removed|is deprecated|Tip: To disable this warning"
    r"|Reporting training result|Progress bars disabled|Execution plan of Dataset|Starting execution of Dataset"
)
#: Ray actors whose whole output is noise on a local run (the cleaner fails to query the state API and says so).
NOISY_ACTORS = ("PlacementGroupCleaner",)
_TRACEBACK = re.compile(r"^\s|^Traceback|^[\w.]+(Error|Exception|Warning)\b")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* ``sys.stderr`` (so redirected or captured stderr gets the lines)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def logger() -> logging.Logger:
    """The ``omnivad`` logger, with its stderr handler installed once."""
    log = logging.getLogger(NAME)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
        log.setLevel(os.environ.get("OMNIVAD_LOG_LEVEL", "INFO").upper())
    return log


def setup(level: str | None = None, progress: bool | None = None) -> None:
    """Apply ``--log-level`` and ``--progress`` (also exported so Ray workers started later see them)."""
    if level:
        if level.upper() not in LEVELS:
            raise ValueError(f"--log-level: expected one of {', '.join(LEVELS)}, got {level!r}")
        os.environ["OMNIVAD_LOG_LEVEL"] = level.upper()
        logger().setLevel(level.upper())
    if progress:
        os.environ["OMNIVAD_PROGRESS"] = "1"
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"ray(\.|$)")


def filter_lines(lines: list[str]) -> list[str]:
    """``lines`` without Ray's known noise: a matching line and the traceback lines right after it."""
    out: list[str] = []
    skipping = False
    for line in lines:
        if RAY_NOISE.search(line):
            skipping = True
            continue
        if skipping and _TRACEBACK.search(line):
            continue
        skipping = False
        out.append(line)
    return out


def quiet_ray() -> None:
    """Wrap Ray's driver-side printer of worker output with :func:`filter_lines` (not at DEBUG level)."""
    if logger().getEffectiveLevel() <= logging.DEBUG:
        return
    try:
        from ray._private import worker as ray_worker
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # another Ray layout: keep its output as is
        return
    if "ray_print_logs" not in [name for name, _ in dispatcher.handlers]:
        return  # log_to_driver is off, or already wrapped
    ignore_prefix = ray_worker._should_ignore_worker_log_prefix(ray_worker.global_worker)

    def printer(data: dict[str, Any]) -> None:
        if str(data.get("actor_name") or "").startswith(NOISY_ACTORS):
            return
        lines = filter_lines(list(data.get("lines", [])))
        if lines:
            ray_worker.print_to_stdstream({**data, "lines": lines}, ignore_prefix=ignore_prefix)

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.remove_handler("omnivad_print_logs")  # a wrapper left from an earlier ray.init
    dispatcher.add_handler("omnivad_print_logs", printer)


def eta(elapsed_s: float, done: int, remaining: int) -> str:
    """``elapsed 1m05s eta 2m10s`` from the time ``done`` steps took and the steps ``remaining``."""
    left = elapsed_s / done * remaining if done > 0 else float("nan")
    return f"elapsed {clock(elapsed_s)} eta {clock(left)}"


def clock(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
