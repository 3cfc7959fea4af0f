"""Operator behaviour beyond provisioning: invalid Applications, decommission, leader
failover and a member cluster cut off mid-flow."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Event, PersistentVolumeClaim, Pod, Service

from milkyway.kube.resources import APPLICATION, CLUSTER, FLOWRUN

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
APP_LABEL = "milkyway.ebay.com/application"


def stream1() -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / "stream1.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (app.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}


def running(app: dict[str, Any]) -> bool:
    status = app.get("status") or {}
    return status.get("phase") == "Running" and condition(app, "Ready").get("status") == "True"


async def owned_objects(world: Any, application: str) -> list[str]:
    """Every object labelled for ``application`` in every member cluster."""
    found: list[str] = []
    for cluster, client in world.members.items():
        for kind in (StatefulSet, Pod, PersistentVolumeClaim, ConfigMap, Service):
            async for obj in client.list(kind, namespace="*", labels={APP_LABEL: application}):
                found.append(f"{cluster}/{kind.__name__}/{obj.metadata.name}")
    return found


async def runs(world: Any, namespace: str) -> list[dict[str, Any]]:
    """The Applications' lifecycle runs (not the scheduled health checks)."""
    lifecycle = {"milkyway.ebay.com/application": None}
    return [
        r.to_dict() async for r in world.mgmt.list(FLOWRUN, namespace=namespace, labels=lifecycle)
    ]


async def test_invalid_application_reports_field_value_and_fix_and_changes_nothing(
    world: Any,
) -> None:
    doc = stream1()
    doc["spec"]["components"][1]["version"] = "0.0.1"  # kafka1: a version kafka does not know
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def rejected() -> dict[str, Any]:
            app = await world.application("milkyway", "stream1")
            return app if condition(app, "Ready").get("reason") == "InvalidSpec" else {}

        app = await world.eventually(rejected, within=30, what="InvalidSpec condition")
        await asyncio.sleep(1.0)  # time enough for a wrong operator to start something
    ready = condition(app, "Ready")
    assert app["status"]["phase"] == "Failed"
    assert "spec.components[1].version = '0.0.1'" in ready["message"]
    assert "fix:" in ready["message"]
    assert await owned_objects(world, "stream1") == []
    assert await runs(world, "milkyway") == []
    events = [
        e.reason
        async for e in world.mgmt.list(Event, namespace="milkyway")
        if e.involvedObject.name == "stream1"
    ]
    assert "InvalidSpec" in events


async def test_decommission_leaves_nothing_behind(world: Any) -> None:
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(stream1())

        async def is_running() -> bool:
            return running(await world.application("milkyway", "stream1"))

        await world.eventually(is_running, within=120, what="stream1 Running")
        assert await owned_objects(world, "stream1")
        await world.mgmt.delete(APPLICATION, "stream1", namespace="milkyway")

        async def gone() -> bool:
            try:
                await world.application("milkyway", "stream1")
            except ApiError as exc:
                return exc.status.code == 404
            return False

        try:
            await world.eventually(gone, within=120, what="stream1 deleted")
        except AssertionError:
            print(await world.story("milkyway", "stream1"))
            print(await owned_objects(world, "stream1"))
            raise
    assert await owned_objects(world, "stream1") == []
    # The FlowRuns went with the Application; its Events tell the decommission's story.
    assert [r["metadata"]["name"] for r in await runs(world, "milkyway")] == []
    events = [
        e
        async for e in world.mgmt.list(Event, namespace="milkyway")
        if e.involvedObject.name == "stream1"
    ]
    succeeded = [e.message for e in events if e.reason == "FlowSucceeded"]
    assert any("(milkyway-decommission" in (m or "") for m in succeeded), succeeded
    assert not [e.message for e in events if e.reason == "FlowFailed"]


async def test_standby_takes_over_when_the_leader_dies_and_finishes_its_flows(
    world: Any,
) -> None:
    first = world.operator("op-a", release_lease_on_stop=False)
    second = world.operator("op-b")
    await first.start()
    await first.wait_until_leading(10)
    await second.start()
    try:
        await world.apply_application(stream1())

        async def flow_running() -> list[str]:
            return [
                r["metadata"]["name"]
                for r in await runs(world, "milkyway")
                if (r.get("status") or {}).get("phase") == "Running"
            ]

        interrupted = await world.eventually(flow_running, within=30, what="a running flow")

        async def progress_shown() -> bool:
            app = await world.application("milkyway", "stream1")
            message = condition(app, "FlowProgress").get("message", "")
            return (app.get("status") or {}).get("currentFlow") is not None and " steps" in message

        await world.eventually(progress_shown, within=10, what="current flow and progress")
        assert not second.leading.is_set()
        await first.stop()  # dies without releasing its Lease or its FlowRuns
        await second.wait_until_leading(15)

        async def is_running() -> bool:
            return running(await world.application("milkyway", "stream1"))

        try:
            await world.eventually(is_running, within=120, what="stream1 Running after failover")
        except AssertionError:
            print(await world.story("milkyway", "stream1"))
            raise
        phases = {
            r["metadata"]["name"]: r["status"]["phase"] for r in await runs(world, "milkyway")
        }
        assert all(phases[name] == "Succeeded" for name in interrupted)
        assert set(phases.values()) == {"Succeeded"}
    finally:
        await second.stop()
        await first.stop()


async def test_flows_wait_for_a_cut_off_cluster_and_finish_when_it_returns(world: Any) -> None:
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(stream1())

        async def provisioning() -> bool:
            return any(
                (r.get("status") or {}).get("phase") == "Running"
                for r in await runs(world, "milkyway")
            )

        await world.eventually(provisioning, within=30, what="a running flow")
        fault = await world.control.faults.cut_off("na-phx-1")
        try:

            async def reported() -> bool:
                cluster = (await world.mgmt.get(CLUSTER, "na-phx-1")).to_dict()
                app = await world.application("milkyway", "stream1")
                return (cluster.get("status") or {}).get("reachable") is False and condition(
                    app, "ClustersReachable"
                ).get("status") == "False"

            await world.eventually(reported, within=20, what="unreachable reported")
            await asyncio.sleep(3.0)
            phases = {(r.get("status") or {}).get("phase") for r in await runs(world, "milkyway")}
            assert "Failed" not in phases
            app = await world.application("milkyway", "stream1")
            assert app["status"]["phase"] != "Failed"
        finally:
            await world.control.faults.lift(fault.id)

        async def is_running() -> bool:
            return running(await world.application("milkyway", "stream1"))

        await world.eventually(is_running, within=120, what="stream1 Running after cut-off")
    phases = {r["status"]["phase"] for r in await runs(world, "milkyway")}
    assert phases == {"Succeeded"}
    cluster = (await world.mgmt.get(CLUSTER, "na-phx-1")).to_dict()
    assert cluster["status"]["reachable"] is True
