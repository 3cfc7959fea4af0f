"""Provision in dependency order across zones, then decommission leaving nothing."""

from __future__ import annotations

from typing import Any

from milkyway.kube.labels import CONFIG_HASH
from milkyway.operator.planner import zone_want
from milkyway.render.zone import render_zone

from .conftest import NAMESPACE, Harness, application, component


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


async def test_provision_in_dependency_order_then_decommission(harness: Harness) -> None:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 2, "slc": 1}),
            component("kafka1", "1.1.0", {"phx": 2, "slc": 2}),
        ]
    )
    first = await harness.plan()
    assert [r.component for r in first.start] == ["zookeeper1"]
    assert any("kafka1: waiting for zookeeper1" in w for w in first.waiting)
    assert first.status["phase"] == "Provisioning"

    started = await harness.converge()
    assert [(r.operation, r.component) for r in started] == [
        ("provision", "zookeeper1"),
        ("provision", "kafka1"),
    ]
    final = await harness.plan()
    assert final.status["phase"] == "Running"
    slc = final.status["components"]["kafka1"]["zones"]["slc"]
    assert slc == {
        "desired": 2,
        "ready": 2,
        "updated": 2,
        "version": "1.1.0",
        "configHash": slc["configHash"],
        "pods": slc["pods"],
    }
    assert [(p["name"], p["ready"], p["version"]) for p in slc["pods"]] == [
        ("app1-kafka1-slc-0", True, "1.1.0"),
        ("app1-kafka1-slc-1", True, "1.1.0"),
    ]
    assert all(p["node"].startswith("slc-") for p in slc["pods"]), slc["pods"]
    zk = await harness.pods("zookeeper1")
    assert sorted(zk) == [
        "app1-zookeeper1-phx-0",
        "app1-zookeeper1-phx-1",
        "app1-zookeeper1-slc-0",
    ]
    assert all(_ready(p) for p in zk.values())
    assert len({p["metadata"]["annotations"][CONFIG_HASH] for p in zk.values()}) == 2

    started = await harness.converge(deleting=True)
    assert [(r.operation, r.component) for r in started] == [
        ("decommission", "kafka1"),
        ("decommission", "zookeeper1"),
        ("release-namespaces", None),
    ]
    assert await harness.leftovers() == []
    done = await harness.plan(deleting=True)
    assert done.deleted and done.status["phase"] == "Deleting"


async def test_a_zone_removed_from_the_spec_is_decommissioned(harness: Harness) -> None:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 1}),
            component("kafka1", "1.1.0", {"phx": 1, "slc": 2}),
        ]
    )
    await harness.converge()
    harness.document["spec"]["components"][1]["regions"][0]["zones"].pop()

    started = await harness.converge()

    assert (started[0].operation, started[0].component) == ("decommission", "kafka1")
    assert [z["zone"] for z in started[0].params["zones"]] == ["slc"]
    left = await harness.leftovers()
    assert [x for x in left if x.startswith("slc:")] == []
    assert sorted(await harness.pods("kafka1")) == ["app1-kafka1-phx-0"]
    assert (await harness.plan()).status["phase"] == "Running"


async def test_health_check_passes_when_ready_and_fails_when_a_member_is_down(
    harness: Harness,
) -> None:
    harness.document = application([component("zookeeper1", "3.4.7", {"phx": 3})])
    await harness.converge()
    resolved = harness.resolve()
    want = zone_want(
        resolved,
        resolved.components["zookeeper1"],
        "phx",
        render_zone(resolved, "zookeeper1", "phx"),
        {},
    )
    params = {
        "application": "app1",
        "namespace": NAMESPACE,
        "component": "zookeeper1",
        "zones": [want.entry()],
        "timeout": 1,
    }
    healthy = await harness.engine.submit("milkyway-health-check", params)
    assert (await harness.engine.wait(healthy)).status.phase == "Succeeded"

    await harness.control.faults.crash_loop("phx", "app1-zookeeper1-phx-0", namespace=NAMESPACE)
    await harness.eventually_down("app1-zookeeper1-phx-0")
    sick = await harness.engine.submit("milkyway-health-check", params)
    finished = await harness.engine.wait(sick)
    assert finished.status.phase == "Failed"
    assert any("2/3 Ready" in n.message for n in finished.status.nodes.values())
