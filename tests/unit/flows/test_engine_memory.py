"""The asyncio engine on the in-memory store: tasks, requests, locks, resume, fencing."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, new_run
from milkyway.flows.store import Conflict, MemoryStore
from milkyway.flows.tasks import REGISTRY, FatalError, RetryableError, TaskContext
from milkyway.model.flow import DONE_LABEL

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: count}
spec:
  parameters:
    members: {type: array, default: [a, b, c, d]}
    key: {type: string, default: k}
  mutex: ${{ params.key }}
  steps:
    - name: first
      action: test.count
      params: {tag: first}
      retry: {limit: 3, backoff: {duration: 0.01}}
    - name: fan
      forEach: params.members
      action: test.count
      params: {tag: "${{ item }}"}
      strategy: {parallelism: 2}
      retry: {limit: 3, backoff: {duration: 0.01}}
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: gated}
spec:
  steps:
    - name: hold
      action: test.block
    - name: confirm
      approval: {users: [bob]}
    - name: done
      action: test.count
      params: {tag: done}
"""


class CountParams(BaseModel):
    tag: str
    fail_times: int = 0


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.release = asyncio.Event()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def registry(recorder: Recorder) -> Any:
    registry = REGISTRY.copy()

    @registry.task("test.count")
    async def count(params: CountParams, ctx: TaskContext) -> dict[str, Any]:
        recorder.calls.append((ctx.run_id, params.tag, ctx.attempt))
        await asyncio.sleep(0.005)
        if params.tag == "b" and ctx.attempt == 1:
            raise RetryableError("b is not ready yet")
        if params.tag == "fatal":
            raise FatalError("cannot")
        return {"tag": params.tag}

    @registry.task("test.block")
    async def block(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        await recorder.release.wait()
        return {}

    return registry


def _engine(store: MemoryStore, registry: Any, **kw: Any) -> Engine:
    return Engine(store, Catalog(load_flows(FLOWS)), registry=registry, poll_interval=0.02, **kw)


async def test_run_retries_and_fans_out(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    async with _engine(store, registry) as engine:
        name = await engine.submit("count", target="app/zk", requested_by="alice")
        run = await engine.wait(name, 10)
    assert run.status.phase == "Succeeded", run.status.message
    tags = [tag for _, tag, _ in recorder.calls]
    assert sorted(tags) == ["a", "b", "b", "c", "d", "first"]
    b_node = run.status.nodes["fan[1]"]
    assert [a.phase for a in b_node.attempts] == ["Failed", "Succeeded"]
    assert b_node.attempts[0].message == "b is not ready yet"
    assert all(a.actor == engine.engine_id for a in b_node.attempts)
    assert run.status.nodes["fan"].outputs == [{"tag": t} for t in "abcd"]
    assert run.status.spec_hash.startswith("sha256:")
    assert run.status.owner == ""
    assert any(reason == "RunSucceeded" for _, reason, _, _ in store.events)


async def test_mutex_keeps_runs_with_the_same_key_apart(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    async with _engine(store, registry) as engine:
        names = [await engine.submit("count", {"key": "same"}) for _ in range(3)]
        other = await engine.submit("count", {"key": "other"})
        runs = [await engine.wait(n, 20) for n in [*names, other]]
    assert all(r.status.phase == "Succeeded" for r in runs)
    spans = {
        n: (r.status.started_at, r.status.finished_at)
        for n, r in zip([*names, other], runs, strict=True)
    }
    ordered = sorted(spans[n] for n in names)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert start is not None and end is not None and start >= end


async def test_concurrency_limit_caps_runs_per_key(registry: Any, recorder: Recorder) -> None:
    text = (
        FLOWS
        + """
---
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: limited}
spec:
  parameters:
    cluster: {type: string}
  concurrency:
    - {key: "cluster/${{ params.cluster }}", limit: 2}
  steps:
    - {name: work, action: test.block}
"""
    )
    store = MemoryStore()
    engine = Engine(store, Catalog(load_flows(text)), registry=registry, poll_interval=0.02)
    async with engine:
        names = [await engine.submit("limited", {"cluster": "c1"}) for _ in range(4)]
        elsewhere = await engine.submit("limited", {"cluster": "c2"})
        await asyncio.sleep(0.3)
        phases = [(await store.get(n)).status.phase for n in names]
        assert sorted(phases) == ["Pending", "Pending", "Running", "Running"]
        assert (await store.get(elsewhere)).status.phase == "Running"
        waiting = next(n for n, p in zip(names, phases, strict=True) if p == "Pending")
        assert "at most 2 run(s) at once" in (await store.get(waiting)).status.message
        recorder.release.set()
        runs = [await engine.wait(n, 20) for n in [*names, elsewhere]]
    assert all(r.status.phase == "Succeeded" for r in runs)


async def test_approval_requests_through_the_store(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    async with _engine(store, registry) as engine:
        name = await engine.submit("gated", requested_by="alice")
        recorder.release.set()
        for _ in range(200):
            run = await store.get(name)
            if run.status.nodes.get("confirm") and run.status.nodes["confirm"].phase == "Waiting":
                break
            await asyncio.sleep(0.01)
        await engine.request(name, "approve", "alice", step="confirm")
        await asyncio.sleep(0.1)
        run = await store.get(name)
        assert run.status.nodes["confirm"].phase == "Waiting"
        assert "requested this run" in run.status.message
        await engine.request(name, "approve", "bob", step="confirm", reason="lgtm")
        run = await engine.wait(name, 10)
    assert run.status.phase == "Succeeded"
    decision = run.status.nodes["confirm"].decision
    assert decision is not None and decision.by == "bob" and decision.reason == "lgtm"
    assert any(reason == "RequestRejected" for _, reason, _, _ in store.events)


async def test_cancel_request_stops_a_running_run(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    async with _engine(store, registry) as engine:
        name = await engine.submit("gated", requested_by="alice")
        await asyncio.sleep(0.05)
        await engine.request(name, "cancel", "carol", reason="not today")
        run = await engine.wait(name, 10)
    assert run.status.phase == "Cancelled"
    assert run.status.nodes["hold"].attempts[-1].phase == "Cancelled"
    assert "carol" in run.status.message


async def test_a_new_engine_resumes_an_abandoned_run(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    first = _engine(store, registry, lease_seconds=0.2)
    first.start()
    name = await first.submit("gated", requested_by="alice")
    await asyncio.sleep(0.1)
    await first.stop()
    run = await store.get(name)
    assert run.status.nodes["hold"].phase == "Running"
    recorder.release.set()
    async with _engine(store, registry, lease_seconds=0.2) as second:
        for _ in range(300):
            run = await store.get(name)
            if run.status.nodes["confirm"].phase == "Waiting":
                break
            await asyncio.sleep(0.01)
        await second.request(name, "approve", "bob", step="confirm")
        run = await second.wait(name, 10)
    assert run.status.phase == "Succeeded"
    attempts = run.status.nodes["hold"].attempts
    assert [a.phase for a in attempts] == ["Interrupted", "Succeeded"]
    assert attempts[0].actor == first.engine_id
    assert attempts[1].actor == second.engine_id


async def test_two_engines_never_both_advance_a_run(registry: Any, recorder: Recorder) -> None:
    store = MemoryStore()
    one = _engine(store, registry, engine_id="one")
    two = _engine(store, registry, engine_id="two")
    names = [await one.submit("count", {"key": f"k{i}"}) for i in range(8)]
    # Both engines see every run unowned at the same moment and race to claim it.
    await asyncio.gather(one.scan(), two.scan())
    async with one, two:
        runs = [await one.wait(n, 20) for n in names]
    assert all(r.status.phase == "Succeeded" for r in runs)
    conflicts = one.claim_conflicts + two.claim_conflicts
    assert conflicts >= 8, "every run's second claimant must see a conflict"
    for run in runs:
        actors = {a.actor for n in run.status.nodes.values() for a in n.attempts}
        assert len(actors) == 1, f"{run.metadata.name} advanced by {actors}"
    calls = [(run, tag) for run, tag, _ in recorder.calls]
    retried_b = 8
    assert len(calls) == len(set(calls)) + retried_b


async def test_store_rejects_stale_writes(registry: Any) -> None:
    store = MemoryStore()
    run = await store.create(new_run(Catalog(load_flows(FLOWS)), registry, "gated"))
    await store.replace_status(run)
    with pytest.raises(Conflict):
        await store.replace_status(run)


ONE_STEP = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: one}
spec:
  steps:
    - name: only
      action: test.count
      params: {tag: only}
"""


async def test_a_run_with_nothing_to_wait_for_costs_four_writes(registry: Any) -> None:
    """The run as submitted, its claim and start in one write, its end and release in
    one, the done label: a flow run every few minutes for each of a thousand
    Applications (the health report) pays for every write it makes."""
    store = MemoryStore()
    async with Engine(
        store, Catalog(load_flows(ONE_STEP)), registry=registry, poll_interval=0.02
    ) as engine:
        name = await engine.submit("one")
        run = await engine.wait(name, 10)
        for _ in range(100):
            if (await store.get(name)).metadata.labels.get(DONE_LABEL) == "true":
                break
            await asyncio.sleep(0.01)
    assert run.status.phase == "Succeeded" and run.status.owner == ""
    assert run.status.lease_until == 0.0
    assert store.writes == 4
    assert [reason for _, reason, _, _ in store.events] == ["RunStarted", "RunSucceeded"]


async def test_a_flow_that_records_only_warnings_records_no_event_when_it_succeeds(
    registry: Any,
) -> None:
    quiet = ONE_STEP.replace("spec:\n", "spec:\n  events: warnings\n").replace(
        "name: one", "name: quiet"
    )
    failing = quiet.replace("name: quiet", "name: quiet-failing").replace("tag: only", "tag: fatal")
    store = MemoryStore()
    async with Engine(
        store, Catalog(load_flows(quiet + "---\n" + failing)), registry=registry, poll_interval=0.02
    ) as engine:
        ok = await engine.wait(await engine.submit("quiet"), 10)
        bad = await engine.wait(await engine.submit("quiet-failing"), 10)
    assert ok.status.phase == "Succeeded" and bad.status.phase == "Failed"
    assert [(name, reason) for name, reason, _, _ in store.events] == [
        (bad.metadata.name, "RunFailed")
    ]
