"""An engine stopped in the middle of a rolling upgrade: another engine takes the run over
and finishes it; thanks to idempotent tasks no member is restarted twice."""

from __future__ import annotations

from collections import Counter

from milkyway.flows.engine import Engine

from .conftest import Harness, application, component


async def test_another_engine_resumes_an_interrupted_upgrade(harness: Harness) -> None:
    harness.document = application([component("zookeeper1", "3.4.7", {"phx": 3, "slc": 2})])
    await harness.converge()
    zk = harness.tally("zookeeper1")
    zk.reset()
    harness.document["spec"]["components"][0]["version"] = "3.4.14"
    (request,) = (await harness.plan()).start
    assert request.operation == "rolling-upgrade"
    first = harness.engine
    run = await first.submit(request.flow, request.params, target="stream/app1/zookeeper1")

    await harness.until(lambda: sum(1 for t in zk.history if t.ready) >= 2, within=60)
    await first.stop()
    taken_over = Engine(
        first.store, first.catalog, clients=first.clients, poll_interval=0.05, lease_seconds=1
    )
    harness.engine = taken_over
    taken_over.start()
    try:
        finished = await taken_over.wait(run, within=120)
    finally:
        await taken_over.stop()
        harness.engine = first
        first.start()

    assert finished.status.phase == "Succeeded", finished.status.message
    actors = {a.actor for node in finished.status.nodes.values() for a in node.attempts}
    assert {first.engine_id, taken_over.engine_id} <= actors, "both engines ran steps"
    pods = await harness.pods("zookeeper1")
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods.values()} == {
        "3.4.14"
    }
    restarts = Counter(t.name for t in zk.history if not t.alive)
    assert set(restarts) == set(pods), "every member was restarted"
    assert max(restarts.values()) == 1, f"a member restarted twice: {restarts}"
    assert zk.max_down(5) <= 2
