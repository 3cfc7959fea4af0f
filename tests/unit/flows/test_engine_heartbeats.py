"""Heartbeats ride on the run's next write, or are written on their own at most once per
``heartbeat_write_interval``: tasks waiting side by side do not write the run one
heartbeat at a time, and a held-back heartbeat still keeps its step's heartbeat timeout
away."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.model.flow import FlowRun

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: side-by-side}
spec:
  steps:
    - name: each
      forEach: [1, 2, 3]
      action: hb.wait
      params: {item: "${{ item }}"}
      strategy: {parallelism: 3}
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: watched}
spec:
  steps:
    - name: long
      action: hb.beating
      heartbeatTimeout: 2
"""


class CountingStore(MemoryStore):
    """Keeps every status written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[FlowRun] = []

    async def replace_status(self, run: FlowRun) -> FlowRun:
        self.written.append(run)
        return await super().replace_status(run)


class ItemParams(BaseModel):
    item: int = 0


class World:
    def __init__(self) -> None:
        self.release = {n: asyncio.Event() for n in (1, 2, 3)}
        self.beaten: set[int] = set()
        self.registry = self._registry()

    def _registry(self) -> TaskRegistry:
        registry = REGISTRY.copy()

        @registry.task("hb.wait")
        async def wait(params: ItemParams, ctx: TaskContext) -> dict[str, Any]:
            ctx.heartbeat(f"waiting {params.item}")
            self.beaten.add(params.item)
            await self.release[params.item].wait()
            return {}

        @registry.task("hb.beating")
        async def beating(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
            # Longer than the heartbeat timeout, beating well within it.
            for n in range(20):
                ctx.heartbeat(f"beat {n}")
                await asyncio.sleep(0.2)
            return {}

        return registry


async def until(condition: Any, within: float = 30.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def messages(run: FlowRun) -> dict[str, str]:
    return {path: node.message for path, node in run.status.nodes.items() if node.kind == "task"}


async def test_heartbeats_of_waiting_tasks_ride_on_the_next_write() -> None:
    world, store = World(), CountingStore()
    catalog = Catalog(load_flows(FLOWS))
    async with Engine(
        store, catalog, registry=world.registry, poll_interval=0.05, heartbeat_write_interval=3600
    ) as engine:
        name = await engine.submit("side-by-side")
        await until(lambda: world.beaten == {1, 2, 3})
        before = len(store.written)
        await asyncio.sleep(0.5)
        assert len(store.written) == before, "heartbeats alone wrote the run"
        assert not any(m.startswith("waiting") for m in messages(store.written[-1]).values())

        world.release[1].set()
        await until(lambda: len(store.written) > before)
        shown = messages(store.written[before])
        assert shown["each[1]"] == "waiting 2" and shown["each[2]"] == "waiting 3", (
            f"the write of the first success carries the others' heartbeats: {shown}"
        )
        world.release[2].set()
        world.release[3].set()
        run = await engine.wait(name, within=30)
    assert run.status.phase == "Succeeded"


async def test_heartbeats_alone_are_written_after_the_interval() -> None:
    world, store = World(), CountingStore()
    catalog = Catalog(load_flows(FLOWS))
    async with Engine(
        store, catalog, registry=world.registry, poll_interval=0.05, heartbeat_write_interval=0.05
    ) as engine:
        name = await engine.submit("side-by-side")
        await until(
            lambda: (
                bool(store.written)
                and sum(m.startswith("waiting") for m in messages(store.written[-1]).values()) == 3
            )
        )
        for event in world.release.values():
            event.set()
        run = await engine.wait(name, within=30)
    assert run.status.phase == "Succeeded"


async def test_a_held_back_heartbeat_keeps_the_heartbeat_timeout_away() -> None:
    world, store = World(), CountingStore()
    catalog = Catalog(load_flows(FLOWS))
    async with Engine(
        store, catalog, registry=world.registry, poll_interval=0.05, heartbeat_write_interval=3600
    ) as engine:
        name = await engine.submit("watched")
        run = await engine.wait(name, within=60)
    assert run.status.phase == "Succeeded", run.status.message
    assert any(messages(written).get("long", "").startswith("beat") for written in store.written)
