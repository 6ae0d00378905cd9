"""The run's phases (engine/timing.py): the worker's and the driver's add up to the run's wall time."""

from __future__ import annotations

import time

from omnivad.engine.timing import PHASES, Phases, describe, driver_timing, worker_timing


def test_phases_add_up_to_the_wall_time() -> None:
    marks = {"start": time.time()}
    time.sleep(0.02)
    marks["planned"] = time.time()
    timer = Phases()
    timer.mark("start")
    with timer.phase("data_read"):
        time.sleep(0.03)
    time.sleep(0.01)
    timer.mark("loop")
    with timer.phase("validation"):
        time.sleep(0.02)
    with timer.phase("checkpoint"):
        time.sleep(0.01)
    time.sleep(0.02)
    worker = worker_timing(timer)
    assert worker["data_read"] >= 0.03 and worker["setup"] >= 0.0095 and worker["loop"] >= 0.019
    time.sleep(0.01)
    for k in ("launched", "read", "written"):
        marks[k] = time.time()
        time.sleep(0.005)
    t = driver_timing(worker, marks)
    assert list(t) == [*PHASES, "total"]
    assert abs(sum(v for k, v in t.items() if k != "total") - t["total"]) < 0.1 * t["total"]
    assert t["finish"] >= 0.0095 and "total" in describe(t)
