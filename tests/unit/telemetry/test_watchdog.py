"""/healthz fails once the event loop stops turning."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from milkyway.telemetry import REGISTRY
from milkyway.telemetry.watchdog import LoopWatchdog


def test_a_stale_stamp_is_unhealthy() -> None:
    now = [0.0]
    watchdog = LoopWatchdog(stale_after=30.0, clock=lambda: now[0])
    assert watchdog.healthy()
    now[0] = 29.0
    assert watchdog.healthy()
    now[0] = 31.0
    assert not watchdog.healthy()


async def test_a_turning_loop_stays_healthy() -> None:
    now = [0.0]
    watchdog = LoopWatchdog(stale_after=30.0, clock=lambda: now[0])
    task = asyncio.create_task(watchdog.run(interval=0.01))
    try:
        now[0] = 100.0
        await asyncio.sleep(0.05)
        assert watchdog.healthy()
    finally:
        task.cancel()


def test_each_turn_records_how_late_it_came() -> None:
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "lag", registry=registry, buckets=(0.01, 0.1, 1))
    now = [10.0]
    watchdog = LoopWatchdog(clock=lambda: now[0], lag=lag)
    watchdog.tick(0.05)  # the first turn has no earlier one to be late after
    assert registry.get_sample_value("lag_seconds_count") == 0
    now[0] = 10.05
    watchdog.tick(0.05)  # on time
    now[0] = 10.40  # the loop was held 300 ms
    watchdog.tick(0.05)
    assert registry.get_sample_value("lag_seconds_count") == 2
    assert round(registry.get_sample_value("lag_seconds_sum"), 3) == 0.3
    assert registry.get_sample_value("lag_seconds_bucket", {"le": "0.1"}) == 1


async def test_a_blocked_loop_shows_in_the_process_lag_metric() -> None:
    total = "milkyway_event_loop_lag_seconds_sum"
    before = REGISTRY.get_sample_value(total) or 0.0
    task = asyncio.create_task(LoopWatchdog().run(interval=0.01))
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # noqa: ASYNC251  (a blocking call holds the loop: the point)
        await asyncio.sleep(0.03)
    finally:
        task.cancel()
    assert (REGISTRY.get_sample_value(total) or 0.0) - before >= 0.15
