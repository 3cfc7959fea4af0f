"""Day-2 operations end to end on a small Application spanning three zones in two regions:
ZooKeeper 1+1+1 (quorum: at most one member down across all zones) and Kafka 2+2+2
(rack-aware: one zone at a time). Each operation ends Ready with the expected pods,
versions, config hashes and volumes, and the readiness monitor checks the disruption
policy at every transition of every rolling operation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.core_v1 import PersistentVolumeClaim

from milkyway.cli.app_commands import (
    _now,
    params_edit,
    request_replace,
    request_restart,
    scale_edit,
    upgrade_edit,
)
from milkyway.kube.labels import CONFIG_HASH

from .conftest import APP_LABEL, COMPONENT_LABEL, World, track

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out

SMALL = (Path(__file__).parent / "small.yaml").read_text()
NS, APP = "day2", "small"
ZONES = ("phx", "slc", "ams")
VERSION_LABEL = "app.kubernetes.io/version"


async def _members(world: World, component: str) -> dict[str, dict[str, Any]]:
    """Pods of ``component`` in every zone, by ``cluster/name``."""
    found = {}
    for zone in ZONES:
        cluster = world.cluster_of(zone)
        for pod in await world.pods(cluster, NS, {APP_LABEL: APP, COMPONENT_LABEL: component}):
            found[f"{cluster}/{pod['metadata']['name']}"] = pod
    return found


async def _claims(world: World, zone: str, component: str) -> set[str]:
    names = set()
    for pod in await world.pods(
        world.cluster_of(zone), NS, {APP_LABEL: APP, COMPONENT_LABEL: component}
    ):
        for volume in pod["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                names.add(volume["persistentVolumeClaim"]["claimName"])
    return names


async def _provisioned(world: World) -> None:
    await world.apply(SMALL)
    await world.wait_ready(NS, APP, within=120)


def _hash(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["annotations"][CONFIG_HASH])


def _zone(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["milkyway.ebay.com/zone"])


def _uids(pods: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: p["metadata"]["uid"] for k, p in pods.items()}


async def test_scale_out_and_in_in_one_zone_and_across_zones(world: World) -> None:
    await _provisioned(world)
    kafka = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "kafka"})
    kafka.start()

    await world.edit(NS, APP, scale_edit("kafka", "phx", 3, None))
    await world.wait_ready(NS, APP)
    members = await _members(world, "kafka")
    assert sorted(k for k in members if k.startswith("na-phx/")) == [
        f"na-phx/small-kafka-phx-{i}" for i in range(3)
    ]
    assert kafka.max_zones <= 1, "brokers of two zones were down at once"

    def grow(spec: dict[str, Any]) -> str:
        scale_edit("zookeeper", "phx", 2, None)(spec)
        return scale_edit("zookeeper", "slc", 2, None)(spec)

    await world.edit(NS, APP, grow)
    obj = await world.wait_ready(NS, APP)
    zk = await _members(world, "zookeeper")
    assert len(zk) == 5
    assert obj["status"]["components"]["zookeeper"]["zones"]["slc"]["ready"] == 2

    def shrink(spec: dict[str, Any]) -> str:
        scale_edit("zookeeper", "phx", 1, None)(spec)
        return scale_edit("zookeeper", "slc", 1, None)(spec)

    await world.edit(NS, APP, shrink)
    await world.edit(NS, APP, scale_edit("kafka", "phx", 2, None))
    await world.wait_ready(NS, APP)
    assert len(await _members(world, "zookeeper")) == 3
    kafka_pods = await _members(world, "kafka")
    assert sorted(k for k in kafka_pods if k.startswith("na-phx/")) == [
        "na-phx/small-kafka-phx-0",
        "na-phx/small-kafka-phx-1",
    ]
    assert len(await _claims(world, "phx", "kafka")) == 2
    left = [
        c.metadata.name
        async for c in world.member("na-phx").list(PersistentVolumeClaim, namespace=NS)
        if c.metadata.name.endswith("small-kafka-phx-2")
    ]
    assert left == [], "scale-in left the removed member's volume behind"


async def test_config_change_hot_reload_keeps_pods_restart_rolls_by_zone(world: World) -> None:
    await _provisioned(world)
    old = await _members(world, "kafka")
    before = _uids(old)
    kafka = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "kafka"})
    kafka.start()

    await world.edit(NS, APP, params_edit("kafka", {"logRetentionHours": 24}, None))
    await world.wait_ready(NS, APP)
    assert _uids(await _members(world, "kafka")) == before, "a hot-reloadable change restarted"
    assert kafka.max_down == 0

    await world.edit(NS, APP, params_edit("kafka", {"heapMb": 2048}, None))
    await world.wait_ready(NS, APP)
    after = await _members(world, "kafka")
    assert set(after) == set(before)
    assert all(after[k]["metadata"]["uid"] != before[k] for k in before), (
        "not every broker restarted"
    )
    for zone in ZONES:
        old_hashes = {_hash(p) for p in old.values() if _zone(p) == zone}
        new_hashes = {_hash(p) for p in after.values() if _zone(p) == zone}
        assert len(new_hashes) == 1 and new_hashes != old_hashes, zone
    assert kafka.max_zones == 1, "brokers of two zones were down at once"
    assert max(kafka.deletions.values()) == 1


async def test_version_upgrade_keeps_the_quorum(world: World) -> None:
    await _provisioned(world)
    zk = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"})
    zk.start()
    await world.edit(NS, APP, upgrade_edit("zookeeper", "3.9.3", None))
    obj = await world.wait_ready(NS, APP)
    members = await _members(world, "zookeeper")
    assert {p["metadata"]["labels"][VERSION_LABEL] for p in members.values()} == {"3.9.3"}
    assert all(
        obj["status"]["components"]["zookeeper"]["zones"][z]["version"] == "3.9.3" for z in ZONES
    )
    assert zk.max_down == 1, "the ensemble had more than one member down (or none restarted)"
    assert sorted(zk.deletions.values()) == [1, 1, 1]


async def test_replace_member_gets_a_new_volume_and_keeps_its_identity(world: World) -> None:
    await _provisioned(world)
    victim = "small-zookeeper-slc-0"
    before = await _members(world, "zookeeper")
    old_claims = await _claims(world, "slc", "zookeeper")
    slc = world.member("na-slc")
    old_claim_uids = {
        c.metadata.uid
        async for c in slc.list(PersistentVolumeClaim, namespace=NS)
        if c.metadata.name in old_claims
    }
    zk = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"})
    zk.start()
    await request_replace(world.client, APP, NS, victim, _now())
    await world.wait_for(
        lambda: _replaced(world, victim, before[f"na-slc/{victim}"]["metadata"]["uid"]),
        "the member to be replaced",
    )
    await world.wait_ready(NS, APP)
    after = await _members(world, "zookeeper")
    assert set(after) == set(before)
    assert (
        after[f"na-slc/{victim}"]["metadata"]["labels"]
        == before[f"na-slc/{victim}"]["metadata"]["labels"]
    )
    new_claim_uids = {
        c.metadata.uid
        async for c in slc.list(PersistentVolumeClaim, namespace=NS)
        if c.metadata.name in old_claims
    }
    assert new_claim_uids and not (new_claim_uids & old_claim_uids), "the volume was kept"
    assert zk.max_down == 1


async def _replaced(world: World, pod: str, old_uid: str) -> bool:
    pods = await world.pods("na-slc", NS, {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"})
    return any(p["metadata"]["name"] == pod and p["metadata"]["uid"] != old_uid for p in pods)


async def test_requested_restart_rolls_every_member_once_within_the_policy(world: World) -> None:
    await _provisioned(world)
    before = _uids(await _members(world, "zookeeper"))
    zk = track(world, {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"})
    zk.start()
    await request_restart(world.client, APP, NS, "zookeeper", _now())

    async def restarted() -> bool:
        now = _uids(await _members(world, "zookeeper"))
        return set(now) == set(before) and all(now[k] != before[k] for k in before)

    await world.wait_for(restarted, "every ZooKeeper member to restart", within=90)
    await world.wait_ready(NS, APP)
    assert zk.max_down == 1, "more than one member of the ensemble was down at once"
    assert sorted(zk.deletions.values()) == [1, 1, 1]
