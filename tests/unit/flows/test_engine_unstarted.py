"""A run whose creator stopped between creating it and writing its status is started by
an engine (or failed, if it cannot start) instead of blocking whoever waits for it.

The scenarios take the store and a way to create a run without its status, so the
Kubernetes store's test reuses them with the real two-write creation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from milkyway.flows.core import clone
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, new_run
from milkyway.flows.store import MemoryStore, Store
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.model.flow import DONE_LABEL, FlowRun, FlowRunStatus

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: greet}
spec:
  parameters:
    who: {type: string}
  steps:
    - name: hello
      action: test.greet
      params: {who: "${{ params.who }}"}
"""

CreateUnstarted = Callable[[FlowRun], Awaitable[None]]


class GreetParams(BaseModel):
    who: str


def unstarted_catalog() -> Catalog:
    return Catalog(load_flows(FLOWS))


def unstarted_registry(greeted: list[str]) -> TaskRegistry:
    registry = REGISTRY.copy()

    @registry.task("test.greet")
    async def greet(params: GreetParams, ctx: TaskContext) -> dict[str, Any]:
        greeted.append(params.who)
        return {"greeted": params.who}

    return registry


def planned_run(flow: str = "greet", **kw: Any) -> FlowRun:
    """The run a creator would store, with the extra lock an operator adds."""
    catalog = unstarted_catalog()
    if flow != "greet":
        catalog = Catalog(load_flows(FLOWS.replace("name: greet", f"name: {flow}")))
    return new_run(catalog, None, flow, {"who": "zk-0"}, locks=["1:component/zk"], **kw)


async def wait_for(store: Store, name: str, check: Callable[[FlowRun], bool]) -> FlowRun:
    for _ in range(500):
        run = await store.get(name)
        if check(run):
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name}: not reached; last status {run.status}")


async def an_unstarted_run_is_started(store: Store, create_unstarted: CreateUnstarted) -> None:
    greeted: list[str] = []
    run = planned_run()
    await create_unstarted(run)
    engine = Engine(
        store,
        unstarted_catalog(),
        registry=unstarted_registry(greeted),
        poll_interval=0.05,
        lease_seconds=0.3,
    )
    await engine.scan()
    untouched = await store.get(run.metadata.name)
    assert not untouched.status.snapshot, "a run just created belongs to its creator a while"
    async with engine:
        done = await engine.wait(run.metadata.name, 20)
    assert done.status.phase == "Succeeded", done.status.message
    assert done.spec.locks == ["1:component/zk"]
    assert "1:component/zk" in done.status.holds
    assert greeted == ["zk-0"]
    assert await store.holders("component/zk") == []


async def an_unstarted_run_of_an_unknown_flow_fails(
    store: Store, create_unstarted: CreateUnstarted
) -> None:
    run = planned_run(flow="retired")
    await create_unstarted(run)
    engine = Engine(
        store,
        unstarted_catalog(),
        registry=unstarted_registry([]),
        poll_interval=0.05,
        lease_seconds=0.2,
    )
    async with engine:
        failed = await wait_for(
            store, run.metadata.name, lambda r: r.metadata.labels.get(DONE_LABEL) == "true"
        )
    assert failed.status.phase == "Failed"
    assert "unknown flow 'retired'" in failed.status.message


async def test_an_unstarted_run_is_started_with_its_locks() -> None:
    store = MemoryStore()

    async def create_unstarted(run: FlowRun) -> None:
        await store.create(clone(run, status=FlowRunStatus()))

    await an_unstarted_run_is_started(store, create_unstarted)


async def test_an_unstarted_run_of_an_unknown_flow_fails_and_is_marked_done() -> None:
    store = MemoryStore()

    async def create_unstarted(run: FlowRun) -> None:
        await store.create(clone(run, status=FlowRunStatus()))

    await an_unstarted_run_of_an_unknown_flow_fails(store, create_unstarted)
