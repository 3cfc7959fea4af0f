"""A watch stream's wait ends when the stream is cancelled (its client went away), even if
an event arrives at the same instant: otherwise the stream keeps going for nobody."""

from __future__ import annotations

import asyncio
from typing import Any

from milkyway.sim.apiserver.api import ClusterAPI


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d"}}


async def test_a_watch_wait_cancelled_as_an_event_arrives_is_cancelled() -> None:
    api = ClusterAPI(name="c1")
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "d"}})
    watcher = api.watch("configmaps", resource_version=str(api.revision))
    waiting = asyncio.ensure_future(watcher.wait(30.0))
    await asyncio.sleep(0.05)
    api.create(cm("a"))
    waiting.cancel()
    await asyncio.sleep(0.1)
    assert waiting.done()
    assert waiting.cancelled(), "the wait swallowed its cancellation"
    assert [e.type for e in watcher.drain()] == ["ADDED"]
