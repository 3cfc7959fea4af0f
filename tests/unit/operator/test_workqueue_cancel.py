"""A worker waiting on the queue stops when cancelled, even if a key arrives at the same
instant (the operator cancels its workers on losing the lease)."""

from __future__ import annotations

import asyncio

from milkyway.operator.workqueue import WorkQueue


async def test_a_worker_cancelled_as_a_key_arrives_stops() -> None:
    queue = WorkQueue()
    queue.add_after("default/later", 60.0)  # the worker's wait now has a deadline
    worker = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.05)  # the worker now waits for a key
    queue.add("default/app")
    worker.cancel()
    await asyncio.sleep(0.1)
    assert worker.done()
    assert worker.cancelled(), f"the worker swallowed its cancellation: {worker}"
    assert queue.waiting("default/app") is not None, "the key waits for the next worker"
