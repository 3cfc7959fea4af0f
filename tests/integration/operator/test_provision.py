"""The operator with the real planner and lifecycle flows provisions the talk's
Application and the multi-region example, on simulated member clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.apps_v1 import StatefulSet
from lightkube.resources.core_v1 import ConfigMap

from milkyway.kube.resources import FLOWRUN

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def ready(app: dict[str, Any]) -> bool:
    """Ready, and no flow running any more."""
    status = app.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conditions
    )


async def test_stream1_provisions_in_dependency_order_and_becomes_ready(world: Any) -> None:
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(EXAMPLES / "stream1.yaml")

        async def is_ready() -> bool:
            return ready(await world.application("milkyway", "stream1"))

        try:
            await world.eventually(is_ready, within=120, what="stream1 Ready")
        except AssertionError:
            print(await world.story("milkyway", "stream1"))
            raise
    app = await world.application("milkyway", "stream1")
    assert app["status"]["phase"] == "Running"
    progress = [c for c in app["status"]["conditions"] if c["type"] == "FlowProgress"]
    assert progress[0]["status"] == "False" and progress[0]["reason"] == "Idle"
    zones = app["status"]["components"]["kafka1"]["zones"]
    assert zones["phx"]["ready"] == 3
    phx = world.members["na-phx-1"]
    names = {s.metadata.name async for s in phx.list(StatefulSet, namespace="milkyway")}
    assert {"stream1-zookeeper1-phx", "stream1-kafka1-phx", "stream1-zookeeper2-phx"} <= names
    runs = [r.to_dict() async for r in world.mgmt.list(FLOWRUN, namespace="milkyway")]
    started = {
        r["metadata"]["labels"]["milkyway.ebay.com/component"]: r["status"]["startedAt"]
        for r in runs
        if r["metadata"]["labels"].get("milkyway.ebay.com/operation") == "provision"
    }
    finished = {
        r["metadata"]["labels"]["milkyway.ebay.com/component"]: r["status"]["finishedAt"]
        for r in runs
        if r["metadata"]["labels"].get("milkyway.ebay.com/operation") == "provision"
    }
    # A component is provisioned only once what it uses is (kafka1 uses zookeeper1, …).
    assert started["kafka1"] >= finished["zookeeper1"]
    assert started["flink-jobmanager"] >= finished["zookeeper2"]
    assert started["flink-taskmanager"] >= finished["flink-jobmanager"]
    # The runs carried their manifests by reference to snapshots owned by the Application.
    provision = next(
        r for r in runs if r["metadata"]["labels"].get("milkyway.ebay.com/component") == "kafka1"
    )
    reference = provision["spec"]["params"]["zones"][0]["manifests"]
    assert reference.startswith("snapshot:milkyway/stream1-render-"), reference
    snapshot = await world.mgmt.get(
        ConfigMap, reference.split("/", 1)[1].split("#")[0], namespace="milkyway"
    )
    assert [o.name for o in snapshot.metadata.ownerReferences] == ["stream1"]
    assert snapshot.metadata.labels["milkyway.ebay.com/render-snapshot"] == "true"


async def test_multi_region_example_provisions_across_all_its_clusters(world: Any) -> None:
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(EXAMPLES / "multi-region.yaml")

        async def is_ready() -> bool:
            return ready(await world.application("streaming", "orders"))

        try:
            await world.eventually(is_ready, within=120, what="orders Ready")
        except AssertionError:
            print(await world.story("streaming", "orders"))
            raise
    app = await world.application("streaming", "orders")
    zones = app["status"]["components"]["kafka"]["zones"]
    assert {z: zones[z]["ready"] for z in zones} == {"phx": 3, "slc": 3, "ams": 3}
    for cluster, expected in {
        "na-phx-1": {"orders-zookeeper-phx", "orders-kafka-phx"},
        "na-slc-1": {"orders-zookeeper-slc", "orders-kafka-slc"},
        "eu-ams-1": {"orders-zookeeper-ams", "orders-kafka-ams"},
    }.items():
        client = world.members[cluster]
        names = {s.metadata.name async for s in client.list(StatefulSet, namespace="streaming")}
        assert expected <= names, cluster
