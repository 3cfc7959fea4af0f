"""PodWatch against a simulated cluster: a change to a zone's pods ends the wait at once
(the fallback interval here is an hour), and the mirror follows the pods without listing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from milkyway.flows.tasks import TaskContext
from milkyway.operator.tasks.watch import PodWatch, open_watches

from .conftest import Harness

SELECTOR = {"bench": "watch"}
AN_HOUR = 3600.0
GENEROUS = 30.0
"""Only to fail instead of hanging if a change were never reported."""


class CountingClient:
    """Counts the listings a PodWatch sends; everything else goes to the real client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lists = 0

    def list(self, *args: Any, **kw: Any) -> Any:
        self.lists += 1
        return self.client.list(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _pod(name: str) -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace="default", labels=dict(SELECTOR)),
        spec=PodSpec(containers=[Container(name="main", image="busybox:1.36")]),
    )


async def _names(watch: PodWatch) -> set[str]:
    return {p["metadata"]["name"] for p in await watch.pods("phx", "default", SELECTOR)}


async def test_a_pod_change_ends_the_wait_and_the_mirror_follows(harness: Harness) -> None:
    client = CountingClient(harness.clients["phx"])
    ctx = TaskContext("run", "step", 1, {"phx": client}, logging.getLogger("t"))
    async with PodWatch(ctx) as watch:
        assert await watch.list("phx", "default", SELECTOR) == []
        assert not watch.watching, "a task that never waits opens no watch"

        # Created before the watch opens: it starts from the listing, so nothing is missed.
        await harness.clients["phx"].create(_pod("w-0"))
        assert await asyncio.wait_for(watch.wait(AN_HOUR), GENEROUS) is True
        assert watch.watching
        while "w-0" not in await _names(watch):
            await asyncio.wait_for(watch.wait(AN_HOUR), GENEROUS)

        await harness.clients["phx"].delete(Pod, "w-0", namespace="default", grace_period=0)
        while "w-0" in await _names(watch):
            await asyncio.wait_for(watch.wait(AN_HOUR), GENEROUS)

        assert client.lists == 1, "every read after the first came from the watch"
    assert open_watches(client) == 0
