"""Provisioning end to end: the talk's Application and the multi-region example."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest

from milkyway.sim import monitor

from .conftest import APP_LABEL, COMPONENT_LABEL, World, example

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out


async def test_talk_application_provisions_in_dependency_order(world: World) -> None:
    first_alive: dict[str, datetime] = {}
    ready_at: dict[str, dict[str, datetime]] = defaultdict(dict)

    def record(t: monitor.Transition) -> None:
        if t.labels.get(APP_LABEL) != "stream1":
            return
        component = t.labels.get(COMPONENT_LABEL, "")
        if t.alive and component not in first_alive:
            first_alive[component] = t.at
        if t.ready:
            ready_at[component].setdefault(t.name, t.at)

    world._unsubscribes.append(monitor.subscribe(world.sim["na-phx"], record))
    [(namespace, name)] = await world.apply(example("stream1.yaml"))
    obj = await world.wait_ready(namespace, name, within=120)

    sizes = {
        "zookeeper1": 3,
        "kafka1": 3,
        "zookeeper2": 3,
        "flink-jobmanager": 1,
        "flink-taskmanager": 3,
    }
    versions = {
        "zookeeper1": "3.4.7",
        "kafka1": "1.1.0",
        "zookeeper2": "3.4.7",
        "flink-jobmanager": "1.4.2",
        "flink-taskmanager": "1.4.2",
    }
    for component, size in sizes.items():
        pods = await world.pods(
            "na-phx", "milkyway", {APP_LABEL: "stream1", COMPONENT_LABEL: component}
        )
        assert len(pods) == size, component
        assert all(_ready(p) for p in pods), component
        assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods} == {
            versions[component]
        }
        zone = obj["status"]["components"][component]["zones"]["phx"]
        assert (zone["desired"], zone["ready"], zone["version"]) == (
            size,
            size,
            versions[component],
        )

    def all_ready(component: str) -> datetime:
        assert len(ready_at[component]) == sizes[component], component
        return max(ready_at[component].values())

    assert first_alive["kafka1"] >= all_ready("zookeeper1")
    assert first_alive["flink-jobmanager"] >= all_ready("zookeeper2")
    assert first_alive["flink-taskmanager"] >= all_ready("flink-jobmanager")
    for cluster in ("na-slc", "eu-ams"):
        assert await world.owned(cluster, "milkyway", "stream1") == []


async def test_multi_region_example_provisions_across_all_its_clusters(world: World) -> None:
    [(namespace, name)] = await world.apply(example("multi-region.yaml"))
    obj = await world.wait_ready(namespace, name, within=120)
    expected = {
        ("zookeeper", "phx"): 2,
        ("zookeeper", "slc"): 2,
        ("zookeeper", "ams"): 1,
        ("kafka", "phx"): 3,
        ("kafka", "slc"): 3,
        ("kafka", "ams"): 3,
        ("flink-jobmanager", "phx"): 2,
        ("flink-taskmanager", "phx"): 4,
    }
    for (component, zone), size in expected.items():
        pods = await world.pods(
            world.cluster_of(zone), namespace, {APP_LABEL: name, COMPONENT_LABEL: component}
        )
        assert len(pods) == size and all(_ready(p) for p in pods), (component, zone)
        assert obj["status"]["components"][component]["zones"][zone]["ready"] == size
    kafka_slc = await world.pods("na-slc", namespace, {APP_LABEL: name, COMPONENT_LABEL: "kafka"})
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for p in kafka_slc
        for v in p["spec"].get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    assert len(claims) == 3


def _ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
