"""The cluster registry on its own: connecting from Secrets, heartbeats into Cluster
status, reachability changes, and Clusters coming and going."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from milkyway.kube.resources import CLUSTER
from milkyway.operator.registry import ClusterRegistry


@pytest.fixture
async def registry(world: Any) -> AsyncIterator[tuple[ClusterRegistry, dict[str, Any], list]]:
    clients: dict[str, Any] = {}
    changes: list[str] = []
    found = ClusterRegistry(
        world.mgmt,
        clients,
        on_member_change=lambda cluster, app: None,
        on_cluster_change=changes.append,
        heartbeat_interval=0.2,
        heartbeat_timeout=0.5,
    )
    task = asyncio.create_task(found.run())
    try:
        yield found, clients, changes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def status(world: Any, name: str) -> dict[str, Any]:
    return dict((await world.mgmt.get(CLUSTER, name)).to_dict().get("status") or {})


async def test_connects_every_cluster_and_heartbeats_into_its_status(
    world: Any, registry: tuple[ClusterRegistry, dict[str, Any], list]
) -> None:
    found, clients, _ = registry

    async def all_reachable() -> bool:
        return all([(await status(world, n)).get("reachable") is True for n in world.members])

    await world.eventually(all_reachable, within=20, what="every cluster reachable")
    assert set(clients) == set(world.members)
    first = (await status(world, "na-phx-1"))["lastHeartbeatTime"]
    ready = (await status(world, "na-phx-1"))["conditions"][0]
    assert ready["type"] == "Ready" and ready["status"] == "True"

    async def beating() -> bool:
        return (await status(world, "na-phx-1"))["lastHeartbeatTime"] != first

    await world.eventually(beating, within=5, what="a later heartbeat")
    assert found.get("na-phx-1") is not None and found.get("na-phx-1").zone == "phx"
    total = len(world.sim["na-phx-1"].api.list("v1/nodes")["items"])
    assert total > 0

    async def counted() -> bool:
        return (await status(world, "na-phx-1")).get("nodes") == {"ready": total, "total": total}

    await world.eventually(counted, within=10, what="the Nodes counted in the status")


async def test_cut_off_cluster_is_reported_unreachable_then_back(
    world: Any, registry: tuple[ClusterRegistry, dict[str, Any], list]
) -> None:
    found, _, changes = registry

    async def reachable(value: bool) -> bool:
        return (await status(world, "eu-ams-1")).get("reachable") is value

    await world.eventually(lambda: reachable(True), within=20, what="reachable")
    changes.clear()
    fault = await world.control.faults.cut_off("eu-ams-1")
    await world.eventually(lambda: found.get("eu-ams-1").reachable is False, within=10)
    assert "eu-ams-1" in changes
    await world.control.faults.lift(fault.id)
    await world.eventually(lambda: reachable(True), within=10, what="reachable again")
    ready = (await status(world, "eu-ams-1"))["conditions"][0]
    assert ready["reason"] == "Heartbeat"


async def test_missing_secret_is_explained_and_fixed_by_creating_it(
    world: Any, registry: tuple[ClusterRegistry, dict[str, Any], list]
) -> None:
    _, clients, _ = registry
    await world.mgmt.create(
        CLUSTER.from_dict(
            {
                "apiVersion": "milkyway.ebay.com/v1",
                "kind": "Cluster",
                "metadata": {"name": "late"},
                "spec": {
                    "region": "NA",
                    "zone": "late",
                    "kubeconfigSecretRef": {
                        "name": "late-kubeconfig",
                        "namespace": "milkyway-system",
                    },
                },
            }
        )
    )

    async def explained() -> dict[str, Any]:
        conditions = (await status(world, "late")).get("conditions") or []
        return conditions[0] if conditions and conditions[0]["reason"] != "Connecting" else {}

    condition = await world.eventually(explained, within=10, what="a reason")
    assert condition["reason"] == "KubeconfigSecretNotFound"
    assert "milkyway-system/late-kubeconfig" in condition["message"]
    assert "late" not in clients

    kubeconfig = world.sim.kubeconfig_path.read_text().replace("na-slc-1", "late")
    await world.mgmt.create(
        Secret(
            metadata=ObjectMeta(name="late-kubeconfig", namespace="milkyway-system"),
            data={"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
        )
    )

    async def reachable() -> bool:
        return (await status(world, "late")).get("reachable") is True

    await world.eventually(reachable, within=10, what="reachable once the Secret exists")
    assert "late" in clients

    await world.mgmt.delete(CLUSTER, "late")
    await world.eventually(lambda: "late" not in clients, within=10, what="client removed")


async def test_a_cluster_narrowed_to_namespaces_is_watched_only_there(
    world: Any, registry: tuple[ClusterRegistry, dict[str, Any], list]
) -> None:
    found, clients, _ = registry
    await world.eventually(lambda: "na-phx-1" in clients, within=20, what="connected")
    before = clients["na-phx-1"]
    await world.mgmt.patch(
        CLUSTER,
        "na-phx-1",
        {"spec": {"namespaces": ["team-a", "team-b"]}},
        patch_type=PatchType.MERGE,
    )

    def narrowed() -> bool:
        member = found.get("na-phx-1")
        return (
            member is not None
            and member.cache is not None
            and (member.cache.namespaces == ("team-a", "team-b"))
        )

    await world.eventually(narrowed, within=20, what="the cache watching two namespaces")
    assert clients["na-phx-1"] is not before, "a new connection for the new namespaces"
