"""The work queue reports how long a key waited before a worker took it."""

from __future__ import annotations

from milkyway.operator.workqueue import WorkQueue
from milkyway.telemetry import REGISTRY

COUNT = "milkyway_workqueue_latency_seconds_count"
SUM = "milkyway_workqueue_latency_seconds_sum"


def _value(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_latency_is_the_wait_from_first_add_to_get() -> None:
    now = [100.0]
    queue = WorkQueue(clock=lambda: now[0])
    count, total = _value(COUNT), _value(SUM)
    queue.add(("ns", "a"))
    now[0] += 2.0
    queue.add(("ns", "a"))  # coalesced: the wait counts from the first add
    now[0] += 1.0
    assert await queue.get() == ("ns", "a")
    assert _value(COUNT) == count + 1
    assert abs(_value(SUM) - total - 3.0) < 1e-9
    queue.done(("ns", "a"))
    queue.add_resync(("ns", "b"))
    now[0] += 0.5
    assert await queue.get() == ("ns", "b")
    assert abs(_value(SUM) - total - 3.5) < 1e-9
