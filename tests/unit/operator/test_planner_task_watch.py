"""PodWatch without a real cluster: polling when a client cannot watch, the cap on open
watches per client, the mirror read without listing, and a failed watch handing over to
polling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from milkyway.flows.tasks import TaskContext
from milkyway.operator.tasks import watch as watch_module
from milkyway.operator.tasks.watch import PodWatch, open_watches

SELECTOR = {"app": "zk"}


class Obj:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class Listing:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.resourceVersion = "7"

    def __aiter__(self) -> AsyncIterator[Obj]:
        return self._items()

    async def _items(self) -> AsyncIterator[Obj]:
        for pod in self.pods:
            yield Obj(pod)


class ListOnly:
    """A client that can list but not watch (as some test doubles and proxies)."""

    def __init__(self) -> None:
        self.pods = [{"metadata": {"name": "zk-0"}}]
        self.lists = 0

    def list(self, resource: Any, namespace: str, labels: dict[str, str]) -> Listing:
        self.lists += 1
        return Listing(self.pods)


class Watching(ListOnly):
    """A client whose watches stay open, silent, until ``release`` is set; or fail at once."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.release = asyncio.Event()
        self.watches = 0

    async def watch(self, resource: Any, **kw: Any) -> AsyncIterator[tuple[str, Obj]]:
        self.watches += 1
        if self.fail:
            raise ConnectionError("watch refused")
        await self.release.wait()
        return
        yield  # an async generator that yields nothing


def _ctx(client: Any) -> TaskContext:
    return TaskContext("run", "step", 1, {"c1": client}, logging.getLogger("t"))


async def test_a_client_without_watch_is_polled_at_the_interval() -> None:
    client = ListOnly()
    async with PodWatch(_ctx(client)) as watch:
        await watch.list("c1", "ns", SELECTOR)
        assert not watch.watching
        assert await watch.wait(0.01) is False, "nothing can report a change: the wait times out"
        await watch.pods("c1", "ns", SELECTOR)
    assert client.lists == 2, "without a watch every read is a listing"


async def test_open_watches_per_client_are_capped_and_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch_module, "MAX_WATCHES_PER_CLIENT", 1)
    monkeypatch.setattr(watch_module, "RESYNC", 0.01)
    client = Watching()
    first, second = PodWatch(_ctx(client)), PodWatch(_ctx(client))
    for waiter in (first, second):
        await waiter.list("c1", "ns", SELECTOR)
        await waiter.wait(0.01)

    assert first.watching and not second.watching, "the second waiter polls instead"
    assert open_watches(client) == 1 and client.watches == 1

    await first.close()
    await second.close()
    assert open_watches(client) == 0


async def test_a_watched_zone_is_read_from_the_mirror_without_listing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch_module, "RESYNC", 0.01)
    client = Watching()
    async with PodWatch(_ctx(client)) as watch:
        await watch.list("c1", "ns", SELECTOR)
        assert await watch.wait(0.01) is False, "the watch is open and reports nothing"
        pods = await watch.pods("c1", "ns", SELECTOR)
        assert [p["metadata"]["name"] for p in pods] == ["zk-0"]
        assert client.lists == 1
    assert open_watches(client) == 0


async def test_a_failed_watch_wakes_the_waiter_and_hands_over_to_polling() -> None:
    client = Watching(fail=True)
    async with PodWatch(_ctx(client)) as watch:
        await watch.list("c1", "ns", SELECTOR)
        assert await asyncio.wait_for(watch.wait(3600), 30) is True, "woken to list again"
        await watch.list("c1", "ns", SELECTOR)
        await watch.wait(0.01)
        assert not watch.watching
        assert client.watches == 1, "a zone whose watch failed is polled from then on"
    assert open_watches(client) == 0
