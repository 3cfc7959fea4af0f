"""The operator's plumbing with a planner double: informers, registry, work queue,
engine hosting, status, Events, finalizer — independent of the real planner's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.core_v1 import Event

from milkyway.kube.resources import CLUSTER, FLOWRUN

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.slow
async def test_provisions_stream1_in_dependency_order(world: Any, double_planner: Any) -> None:
    async with world.operator(planner=double_planner) as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(EXAMPLES / "stream1.yaml")

        async def running() -> bool:
            app = await world.application("milkyway", "stream1")
            return (app.get("status") or {}).get("phase") == "Running"

        await world.eventually(running, within=40, what="stream1 Running")
    app = await world.application("milkyway", "stream1")
    status = app["status"]
    assert status["observedGeneration"] == app["metadata"]["generation"]
    assert status["members"]["zookeeper1"]["zones"]["phx"]["ids"] == [1, 2, 3]
    assert "milkyway.ebay.com/decommission" in app["metadata"]["finalizers"]
    reachable = [c for c in status["conditions"] if c["type"] == "ClustersReachable"]
    assert reachable and reachable[0]["status"] == "True"

    lifecycle = {"milkyway.ebay.com/application": None}  # not the scheduled health checks
    runs = [
        r.to_dict() async for r in world.mgmt.list(FLOWRUN, namespace="milkyway", labels=lifecycle)
    ]
    assert {r["status"]["phase"] for r in runs} == {"Succeeded"}
    order = [
        r["metadata"]["labels"]["milkyway.ebay.com/component"]
        for r in sorted(runs, key=lambda r: r["status"]["startedAt"])
    ]
    assert order == [
        "zookeeper1.phx",
        "kafka1.phx",
        "zookeeper2.phx",
        "flink-jobmanager.phx",
        "flink-taskmanager.phx",
    ]

    async def reasons() -> list[str]:
        return [
            e.reason
            async for e in world.mgmt.list(Event, namespace="milkyway")
            if e.involvedObject.kind == "Application"
        ]

    found = await reasons()
    assert found.count("FlowStarted") == 5
    assert found.count("FlowSucceeded") == 5

    cluster = (await world.mgmt.get(CLUSTER, "na-phx-1")).to_dict()
    assert cluster["status"]["reachable"] is True
    assert cluster["status"]["version"].startswith("v1.")
    assert cluster["status"]["lastHeartbeatTime"]


async def test_a_failed_flow_is_reported_by_a_warning_event(world: Any) -> None:
    from milkyway.operator.planner import FlowRequest, Plan

    def fail_once(
        app: Any, resolved: Any, desired: Any, observed: Any, running: Any, **kw: Any
    ) -> Plan:
        start = ()
        if not running:
            start = (
                FlowRequest(
                    flow="apply-and-wait",
                    params={
                        "cluster": "nowhere",
                        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap"}],
                        "waitFor": {},
                    },
                    component="zookeeper1",
                    reason="a flow bound to fail",
                    mutex="test/fail",
                ),
            )
        return Plan(start, (), {"phase": "Pending"}, None)

    async with world.operator(planner=fail_once, cluster_wait=1.0) as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(EXAMPLES / "stream1.yaml")

        async def failed() -> list[Any]:
            return [
                e
                async for e in world.mgmt.list(Event, namespace="milkyway")
                if e.involvedObject.kind == "Application" and e.reason == "FlowFailed"
            ]

        events = await world.eventually(failed, within=30, what="a FlowFailed event")
    assert events[0].type == "Warning"
    assert "unknown cluster 'nowhere'" in events[0].message
