"""Fault injection for the recovery tests: step hooks (``harness.launch(step_hooks=...)``) that kill a
Ray Train worker the way the OOM killer or a lost node would: no cleanup, no final checkpoint.

Product code has no crash switch; the tests pass these hooks to ``fit``/``run_zero_shot`` instead. The
module is pickled by value, so the workers need not import ``tests``.
"""

from __future__ import annotations

import os
import sys


class KillAt:
    """``hook(step)``: the worker process exits with 137 (as if SIGKILLed) right after step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, step: int) -> None:
        if step == self.step:
            os._exit(137)


def kill_at(step: int) -> list[KillAt]:
    """The ``step_hooks`` that kill every worker right after ``step``."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return [KillAt(step)]
