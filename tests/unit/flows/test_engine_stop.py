"""Stopping an engine must stop it even when something wakes it at the same instant
(a run finishing, a request arriving): otherwise ``Engine.stop()`` waits forever."""

from __future__ import annotations

import asyncio

from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore


async def test_a_stop_arriving_with_a_wakeup_stops_the_supervisor() -> None:
    engine = Engine(MemoryStore(), poll_interval=30.0)
    engine.start()
    await asyncio.sleep(0.05)  # the supervisor now waits for its next poll
    supervisor = engine._supervisor
    assert supervisor is not None and not supervisor.done()
    engine._wakeup.set()  # what a finishing run or a request does
    supervisor.cancel()  # what stop() does, in the same step
    await asyncio.sleep(0.1)
    assert supervisor.done(), "the supervisor swallowed its cancellation and kept polling"
    await engine.stop()
