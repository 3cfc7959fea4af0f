"""Recovery the operator relies on: stale locks, clusters registered late, live clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, new_run
from milkyway.flows.store import MemoryStore, Store
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.model.flow import FlowRun

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: locked}
spec:
  mutex: component/zk
  steps:
    - name: only
      action: recovery.noop
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: remote}
spec:
  parameters:
    cluster: {type: string, default: late}
  steps:
    - name: touch
      action: recovery.touch
      params: {cluster: "${{ params.cluster }}"}
      timeout: 30
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: remote-bounded}
spec:
  steps:
    - name: touch
      action: recovery.touch
      params: {cluster: never}
      timeout: 0.3
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: remote-any}
spec:
  steps:
    - name: touch
      action: recovery.touch
"""


class TouchParams(BaseModel):
    cluster: str | None = None


def recovery_registry() -> TaskRegistry:
    registry = REGISTRY.copy()

    @registry.task("recovery.noop")
    async def noop(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        return {}

    @registry.task("recovery.touch")
    async def touch(params: TouchParams, ctx: TaskContext) -> dict[str, Any]:
        return {"client": str(ctx.client(params.cluster))}

    return registry


def recovery_catalog() -> Catalog:
    return Catalog(load_flows(FLOWS))


async def crash_before_lock_release(
    store: Store, make_engine: Callable[[Store], Engine]
) -> tuple[FlowRun, FlowRun]:
    """Finish one mutex run with its engine failing right after the terminal write.

    Returns the finished run (lock still held) and the next run for the same key, which
    a second engine must be able to start.
    """
    real_release = store.release
    crashes: list[str] = []

    async def crashing_release(key: str, holder: str) -> None:
        crashes.append(holder)
        raise RuntimeError("engine process ended before releasing its locks")

    store.release = crashing_release  # type: ignore[method-assign]
    async with make_engine(store) as first:
        stuck = await first.wait(await first.submit("locked"), 30)
    store.release = real_release  # type: ignore[method-assign]
    assert crashes, "the crash between the terminal write and the lock release did not happen"
    assert stuck.status.phase == "Succeeded"
    assert await store.holders("component/zk") == [stuck.metadata.name]
    async with make_engine(store) as second:
        following = await second.wait(await second.submit("locked"), 30)
    return stuck, following


def _engine(store: Store, **kw: Any) -> Engine:
    return Engine(store, recovery_catalog(), registry=recovery_registry(), poll_interval=0.02, **kw)


async def test_a_lock_left_by_a_finished_run_is_released_by_the_next_one() -> None:
    store = MemoryStore()
    stuck, following = await crash_before_lock_release(store, _engine)
    assert following.status.phase == "Succeeded", following.status.message
    assert following.status.started_at is not None and stuck.status.finished_at is not None
    assert following.status.started_at >= stuck.status.finished_at
    assert await store.holders("component/zk") == []


async def test_a_lock_left_by_a_deleted_run_is_released() -> None:
    store = MemoryStore()
    assert await store.acquire("component/zk", "deleted-run", 1)
    async with _engine(store) as engine:
        run = await engine.wait(await engine.submit("locked"), 30)
    assert run.status.phase == "Succeeded", run.status.message


async def test_a_lock_held_by_a_live_run_is_kept() -> None:
    store = MemoryStore()
    holder = new_run(recovery_catalog(), None, "locked")
    driven_elsewhere = holder.status.model_copy(
        update={"phase": "Running", "owner": "elsewhere", "lease_until": time.time() + 3600}
    )
    first = await store.create(holder.model_copy(update={"status": driven_elsewhere}))
    assert await store.acquire("component/zk", first.metadata.name, 1)
    async with _engine(store) as engine:
        second = await engine.submit("locked")
        await asyncio.sleep(0.3)
        waiting = await store.get(second)
    assert waiting.status.phase == "Pending"
    assert "waiting for 'component/zk'" in waiting.status.message
    assert await store.holders("component/zk") == [first.metadata.name]


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_a_step_waits_for_its_cluster_to_be_registered() -> None:
    store = MemoryStore()
    clients: dict[str, Any] = {"early": "client-early"}
    async with _engine(store, clients=clients) as engine:
        assert engine.clients is clients
        name = await engine.submit("remote")

        async def waiting() -> bool:
            node = (await store.get(name)).status.nodes.get("touch")
            return node is not None and "waiting for cluster 'late'" in node.message

        await _until(waiting)
        assert (await store.get(name)).status.phase == "Running"
        clients["late"] = "client-late"
        run = await engine.wait(name, 30)
    assert run.status.phase == "Succeeded", run.status.message
    assert run.status.nodes["touch"].outputs == {"client": "client-late"}
    assert len(run.status.nodes["touch"].attempts) == 1


async def test_waiting_for_a_cluster_is_bounded_by_the_step_timeout() -> None:
    store = MemoryStore()
    async with _engine(store, clients={"a": 1, "b": 2}) as engine:
        run = await engine.wait(await engine.submit("remote-bounded"), 30)
    assert run.status.phase == "Failed"
    attempt = run.status.nodes["touch"].attempts[-1]
    assert (attempt.error, attempt.message) == ("Timeout", "attempt timed out")


async def test_waiting_for_a_cluster_can_be_capped_by_the_engine() -> None:
    store = MemoryStore()
    async with _engine(store, clients={"a": 1}, cluster_wait=0.2) as engine:
        run = await engine.wait(await engine.submit("remote", {"cluster": "nowhere"}), 30)
    assert run.status.phase == "Failed"
    attempt = run.status.nodes["touch"].attempts[-1]
    assert attempt.error == "Fatal"
    assert "unknown cluster 'nowhere': not registered within 0.2s" in attempt.message


async def test_waiting_for_a_cluster_can_be_cancelled() -> None:
    store = MemoryStore()
    async with _engine(store, clients={}) as engine:
        name = await engine.submit("remote")

        async def running() -> bool:
            return (await store.get(name)).status.phase == "Running"

        await _until(running)
        await engine.request(name, "cancel", "alice")
        run = await engine.wait(name, 30)
    assert run.status.phase == "Cancelled"


async def test_a_missing_cluster_param_with_several_clusters_is_fatal() -> None:
    store = MemoryStore()
    async with _engine(store, clients={"a": 1, "b": 2}) as engine:
        run = await engine.wait(await engine.submit("remote-any"), 30)
    assert run.status.phase == "Failed"
    attempt = run.status.nodes["touch"].attempts[-1]
    assert attempt.error == "Fatal"
    assert "param cluster is required" in attempt.message


@pytest.mark.parametrize("clients", [{}, {"only": "c"}])
def test_the_engine_keeps_the_mapping_it_is_given(clients: dict[str, Any]) -> None:
    store = MemoryStore()
    engine = _engine(store, clients=clients)
    assert engine.clients is clients
