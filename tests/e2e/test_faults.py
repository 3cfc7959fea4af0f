"""Faults end to end: the operator heals what the simulator breaks, and waits out what it
cannot reach. The Application is the small three-zone one of test_day2, with the
remediation threshold shortened to two seconds by its annotation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.core_v1 import PersistentVolumeClaim

from milkyway.cli.app_commands import upgrade_edit

from .conftest import APP_LABEL, COMPONENT_LABEL, World, track

NS, APP = "day2", "small"
SMALL = (
    (Path(__file__).parent / "small.yaml")
    .read_text()
    .replace(
        "  namespace: day2\n",
        '  namespace: day2\n  annotations:\n    milkyway.ebay.com/remediate-after: "2"\n',
    )
    .replace(
        '      version: "3.8.4"\n',
        '      version: "3.8.4"\n      storage: {storageClass: local}\n',
    )
    .replace("spec:\n", "spec:\n  replacement: {gracePeriodSeconds: 2}\n", 1)
)
"""Remediation after 2 s; members on a lost node or failed disk replaced after 2 s;
ZooKeeper on node-local volumes (the ``local`` class)."""
ZK = {APP_LABEL: APP, COMPONENT_LABEL: "zookeeper"}

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out


async def _provisioned(world: World) -> None:
    await world.apply(SMALL)
    await world.wait_ready(NS, APP, within=120)


async def _pod(world: World, cluster: str, name: str) -> dict[str, Any] | None:
    pods = await world.pods(cluster, NS, ZK)
    return next((p for p in pods if p["metadata"]["name"] == name), None)


async def _claim_uids(world: World, cluster: str, pod: str) -> set[str]:
    return {
        c.metadata.uid
        async for c in world.member(cluster).list(PersistentVolumeClaim, namespace=NS)
        if c.metadata.name.endswith(pod)
    }


async def test_crashed_and_killed_members_come_back(world: World) -> None:
    await _provisioned(world)
    faults = world.control.faults
    await faults.crash_container("na-phx", "small-zookeeper-phx-0", namespace=NS, down_for=1.0)
    killed = await _pod(world, "na-slc", "small-zookeeper-slc-0")
    assert killed is not None
    await faults.kill_pod("na-slc", "small-zookeeper-slc-0", namespace=NS)

    async def back() -> bool:
        pod = await _pod(world, "na-slc", "small-zookeeper-slc-0")
        return pod is not None and pod["metadata"]["uid"] != killed["metadata"]["uid"]

    await world.wait_for(back, "the killed member to come back")
    obj = await world.wait_ready(NS, APP)
    assert all(
        obj["status"]["components"]["zookeeper"]["zones"][z]["ready"] == 1
        for z in ("phx", "slc", "ams")
    )


async def test_member_on_a_lost_node_is_replaced_with_a_new_volume(world: World) -> None:
    await _provisioned(world)
    pod = await _pod(world, "na-phx", "small-zookeeper-phx-0")
    assert pod is not None
    node = pod["spec"]["nodeName"]
    old_claims = await _claim_uids(world, "na-phx", "small-zookeeper-phx-0")
    assert old_claims, "the member has no volume claim"
    await world.control.faults.lose_node("na-phx", node)

    async def moved() -> bool:
        now = await _pod(world, "na-phx", "small-zookeeper-phx-0")
        return now is not None and now["spec"].get("nodeName") not in (None, node) and _ready(now)

    await world.wait_for(moved, "the member to run again on another node", within=90)
    await world.wait_ready(NS, APP)
    new_claims = await _claim_uids(world, "na-phx", "small-zookeeper-phx-0")
    assert new_claims and not (new_claims & old_claims), "the lost node's volume was reused"


async def test_member_on_a_failed_disk_is_replaced_with_a_new_volume(world: World) -> None:
    await _provisioned(world)
    old_claims = await _claim_uids(world, "eu-ams", "small-zookeeper-ams-0")
    assert old_claims, "the member has no volume claim"
    pod = await _pod(world, "eu-ams", "small-zookeeper-ams-0")
    assert pod is not None
    await world.control.faults.fail_disk("eu-ams", node=pod["spec"]["nodeName"])

    async def new_volume() -> bool:
        claims = await _claim_uids(world, "eu-ams", "small-zookeeper-ams-0")
        now = await _pod(world, "eu-ams", "small-zookeeper-ams-0")
        return bool(claims) and not (claims & old_claims) and now is not None and _ready(now)

    await world.wait_for(new_volume, "the member to run on a new volume", within=90)
    await world.wait_ready(NS, APP)


async def test_cluster_cut_off_mid_upgrade_waits_then_finishes(world: World) -> None:
    await _provisioned(world)
    zk = track(world, ZK)
    zk.start()
    await world.edit(NS, APP, upgrade_edit("zookeeper", "3.9.3", None))

    async def upgrade_running() -> bool:
        return bool(await world.unfinished_runs(NS, APP)) and bool(zk.deletions)

    # Generous: on a loaded machine the upgrade's first restart waits behind the apply of
    # every zone and the disruption gate; a stall prints every unfinished step.
    await world.wait_for(upgrade_running, "the upgrade to restart its first member", within=120)
    fault = await world.control.faults.cut_off("eu-ams")
    await asyncio.sleep(4)
    obj = await world.app(NS, APP)
    assert (obj.get("status") or {}).get("phase") != "Failed"
    runs = await world.runs(NS, APP)
    assert all((r.get("status") or {}).get("phase") != "Failed" for r in runs)
    await world.control.faults.lift(fault.id)
    obj = await world.wait_ready(NS, APP, within=120)
    for zone, cluster in (("phx", "na-phx"), ("slc", "na-slc"), ("ams", "eu-ams")):
        pods = await world.pods(cluster, NS, ZK)
        assert [p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods] == ["3.9.3"]
        assert obj["status"]["components"]["zookeeper"]["zones"][zone]["version"] == "3.9.3"
    assert zk.max_down <= 1


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
