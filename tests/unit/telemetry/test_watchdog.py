"""/healthz fails once the event loop stops turning."""

from __future__ import annotations

import asyncio

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
