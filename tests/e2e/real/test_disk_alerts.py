"""A member's disk filling up, end to end with real processes: the simulator's
``fill-disk`` writes a real file into a ZooKeeper member's size-limited volume, the
member's real agent measures it, the operator turns the crossing into the pod's
DiskAlert condition and one Event, and a critical disk into ``replace-member`` after the
grace period; the ensemble comes back Ready with three members."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Event, PersistentVolumeClaim, Pod
from tests.polling import eventually

from milkyway.kube.agent_contract import DISK_ALERT_CONDITION

from ..conftest import World
from .conftest import APP, NS, application, members, wait_quorum

THREE = {"phx": 1, "slc": 1, "ams": 1}
GRACE = 5

pytestmark = pytest.mark.slow


async def _pod(world: World, cluster: str, name: str) -> dict[str, Any] | None:
    async for pod in world.member(cluster).list(Pod, namespace=NS):
        if pod.metadata is not None and pod.metadata.name == name:
            return dict(pod.to_dict())
    return None


def _disk_condition(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == DISK_ALERT_CONDITION:
            return dict(condition)
    return None


async def _events(world: World, cluster: str, pod: str) -> list[str]:
    """The pod's Disk* event reasons, oldest first."""
    found = [
        (str(e.firstTimestamp), str(e.reason))
        async for e in world.member(cluster).list(Event, namespace=NS)
        if e.involvedObject.name == pod and str(e.reason).startswith("Disk")
    ]
    return [reason for _, reason in sorted(found)]


async def test_a_full_disk_is_reported_once_and_a_critical_one_replaces_the_member(
    sized_real_world: World,
) -> None:
    world = sized_real_world
    await world.apply(application(THREE, storage="256Mi", replacement_grace=GRACE))
    await world.wait_ready(NS, APP, within=240)
    await wait_quorum(world, 3)
    member = members(world)[0]
    faults = world.control.faults
    claim_name = f"data-{member.pod}"
    claim = await world.member(member.cluster).get(PersistentVolumeClaim, claim_name, namespace=NS)
    assert claim.metadata is not None
    old_claim_uid = claim.metadata.uid

    # Past the warning threshold only: one DiskWarning, then one DiskRecovered once the
    # file is gone; nothing is replaced.
    warning = await faults.fill_disk(member.cluster, member.pod, namespace=NS, percent=85)
    condition = await eventually(
        lambda: _condition_with(world, member, "Warning"),
        within=60,
        interval=0.5,
        what="the DiskAlert condition at Warning",
    )
    assert condition["status"] == "True" and "data" in condition["message"]
    await faults.lift(warning.id)
    await eventually(
        lambda: _condition_with(world, member, "Ok"),
        within=60,
        interval=0.5,
        what="the DiskAlert condition back to Ok",
    )
    await eventually(
        lambda: _has_events(world, member, ["DiskWarning", "DiskRecovered"]),
        within=30,
        interval=0.5,
        what="one DiskWarning and one DiskRecovered event",
    )
    assert await _events(world, member.cluster, member.pod) == ["DiskWarning", "DiskRecovered"]
    assert not [r for r in await world.runs(NS, APP) if "replace" in r["spec"]["flow"]]

    # Critical: an Event, the condition, then replace-member after the grace period.
    await faults.fill_disk(member.cluster, member.pod, namespace=NS, percent=95)
    await eventually(
        lambda: _condition_with(world, member, "Critical"),
        within=60,
        interval=0.5,
        what="the DiskAlert condition at Critical",
    )
    assert "DiskCritical" in await _events(world, member.cluster, member.pod)

    async def replace_started() -> list[dict[str, Any]]:
        return [
            r
            for r in await world.runs(NS, APP)
            if r["spec"]["flow"].startswith("milkyway-replace-member")
        ]

    runs = await eventually(
        replace_started, within=GRACE + 90, interval=0.5, what="a replace-member flow"
    )
    assert member.pod in str(runs[0]["spec"].get("params"))

    async def new_claim() -> bool:
        try:
            found = await world.member(member.cluster).get(
                PersistentVolumeClaim, claim_name, namespace=NS
            )
        except ApiError:
            return False
        return found.metadata is not None and found.metadata.uid != old_claim_uid

    await eventually(new_claim, within=240, interval=1.0, what="the member on a new volume")
    await world.wait_ready(NS, APP, within=300)
    await wait_quorum(world, 3, within=180)
    replaced = await _pod(world, member.cluster, member.pod)
    assert _disk_condition(replaced) is None


async def _condition_with(world: World, member: Any, reason: str) -> dict[str, Any] | None:
    condition = _disk_condition(await _pod(world, member.cluster, member.pod))
    return condition if condition is not None and condition.get("reason") == reason else None


async def _has_events(world: World, member: Any, wanted: list[str]) -> bool:
    return await _events(world, member.cluster, member.pod) == wanted
