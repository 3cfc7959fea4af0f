"""What a poll costs: finished runs are not listed, submitted runs start without a scan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.model.flow import DONE_LABEL, FlowRun

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: quick}
spec:
  steps:
    - name: only
      action: scan.count
"""


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.listings = 0

    async def list(self) -> list[FlowRun]:
        self.listings += 1
        return await super().list()

    async def list_active(self) -> list[FlowRun]:
        self.listings += 1
        return await super().list_active()


def _registry(calls: list[str]) -> TaskRegistry:
    registry = REGISTRY.copy()

    @registry.task("scan.count")
    async def count(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        calls.append(ctx.run_id)
        return {}

    return registry


async def _marked(store: MemoryStore, name: str) -> bool:
    return (await store.get(name)).metadata.labels.get(DONE_LABEL) == "true"


async def _listed(store: CountingStore) -> bool:
    return store.listings > 0


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def _engine(store: MemoryStore, calls: list[str], **kw: Any) -> Engine:
    kw.setdefault("poll_interval", 3600.0)
    return Engine(store, Catalog(load_flows(FLOWS)), registry=_registry(calls), **kw)


async def test_a_finished_run_is_marked_done_and_left_out_of_scans() -> None:
    store = MemoryStore()
    calls: list[str] = []
    async with _engine(store, calls, poll_interval=0.02) as engine:
        name = await engine.submit("quick")
        run = await engine.wait(name, 30)
        await _until(lambda: _marked(store, name))
    assert run.status.phase == "Succeeded"
    assert [r.metadata.name for r in await store.list_active()] == []
    assert [r.metadata.name for r in await store.list()] == [name]


async def test_a_request_on_a_finished_run_makes_it_active_again() -> None:
    store = MemoryStore()
    calls: list[str] = []
    async with _engine(store, calls, poll_interval=0.02) as engine:
        name = await engine.submit("quick")
        await engine.wait(name, 30)
        await _until(lambda: _marked(store, name))
        await engine.request(name, "cancel", "alice")
        assert [r.metadata.name for r in await store.list_active()] == [name]
        run = await engine.wait(name, 30)
    assert run.status.phase == "Succeeded"
    assert run.spec.requests[0].id in run.status.processed_requests
    assert run.status.message.startswith("cancel:")


async def test_a_submitted_run_starts_without_waiting_for_a_scan() -> None:
    store = CountingStore()
    calls: list[str] = []
    listings_at_start: list[int] = []
    registry = REGISTRY.copy()

    @registry.task("scan.count")
    async def count(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        listings_at_start.append(store.listings)
        calls.append(ctx.run_id)
        return {}

    engine = Engine(store, Catalog(load_flows(FLOWS)), registry=registry, poll_interval=3600)
    async with engine:
        await _until(lambda: _listed(store))
        listed = store.listings
        name = await engine.submit("quick")
        run = await engine.wait(name, 30)
    assert run.status.phase == "Succeeded"
    assert calls == [name]
    assert listings_at_start == [listed], "the run waited for a scan to be listed"


class ReplayingStore(MemoryStore):
    """Lists a snapshot taken earlier, as a slow list of many runs returns."""

    def __init__(self) -> None:
        super().__init__()
        self.replay: list[FlowRun] | None = None

    async def list(self) -> list[FlowRun]:
        return list(self.replay) if self.replay is not None else await super().list()

    async def list_active(self) -> list[FlowRun]:
        return list(self.replay) if self.replay is not None else await super().list_active()


async def test_a_stale_listing_neither_reruns_nor_loses_a_finished_run() -> None:
    store = ReplayingStore()
    calls: list[str] = []
    async with _engine(store, calls) as engine:
        name = await engine.submit("quick")
        store.replay = [await store.get(name)]
        await engine.wait(name, 30)
        for _ in range(3):
            await asyncio.sleep(0.05)
            await engine.scan()
        await asyncio.sleep(0.05)
    run = await store.get(name)
    assert run.status.phase == "Succeeded"
    assert calls == [name]
    assert engine.lost_runs == 0


async def test_a_finished_run_is_let_go_with_its_driver() -> None:
    store = MemoryStore()
    calls: list[str] = []
    async with _engine(store, calls, poll_interval=0.02) as engine:
        names = [await engine.submit("quick") for _ in range(5)]
        for name in names:
            await engine.wait(name, 30)
        for name in names:
            await _until(lambda name=name: _marked(store, name))

        async def nothing_driven() -> bool:
            return engine.driving == 0

        # Every run is done: the engine holds none of them (nor its snapshot) any more.
        await _until(nothing_driven)
        # And a later scan does not take a finished run up again.
        await engine.scan()
        assert engine.driving == 0
    assert sorted(calls) == sorted(names)
