"""Fault injection for the UVAD resume tests: ``after_loop`` hooks (``run_uvad(after_loop=...)``).

Product code has no crash switch; the tests pass these hooks instead. The module is pickled by value, so
the Ray workers that run the hooks need not import ``tests``.
"""

from __future__ import annotations

import sys


class SimulatedCrash(RuntimeError):
    pass


class CrashAfter:
    """``hook(module, loop)``: raises :class:`SimulatedCrash` right after loop ``loop`` of module ``module``
    is committed (the job dies with that loop's state as its last commit)."""

    def __init__(self, module: int, loop: int) -> None:
        self.module, self.loop = module, loop

    def __call__(self, module: int, loop: int) -> None:
        if (module, loop) == (self.module, self.loop):
            raise SimulatedCrash(f"simulated crash after module {module} loop {loop}")


def crash_after(module: int, loop: int) -> list[CrashAfter]:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return [CrashAfter(module, loop)]
