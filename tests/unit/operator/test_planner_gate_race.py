"""The live disruption gate under concurrency: gates running at once never pass on the
same room, because each claims its member before it counts the others."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from milkyway.flows.tasks import RetryableError, TaskContext
from milkyway.operator.tasks.common import DISRUPTING_ANNOTATION
from milkyway.operator.tasks.member import GateParams, disruption_gate

SELECTOR = {"app": "zk"}


def _pod(name: str, ready: bool, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": dict(SELECTOR), "annotations": annotations or {}},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


class Obj:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class Cluster:
    """Pods in memory; every read and write yields to the loop, so concurrent gates
    interleave between their reads and their claims."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = {p["metadata"]["name"]: p for p in pods}

    async def list(self, resource: Any, namespace: str, labels: dict[str, str]) -> AsyncIterator:
        snapshot = [Obj(_copy(p)) for p in self.pods.values()]
        for obj in snapshot:
            await asyncio.sleep(0)
            yield obj

    async def patch(self, resource: Any, name: str, patch: dict, **_: Any) -> None:
        await asyncio.sleep(0)
        annotations = self.pods[name]["metadata"]["annotations"]
        for key, value in patch["metadata"]["annotations"].items():
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value


def _copy(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        **pod,
        "metadata": {**pod["metadata"], "annotations": dict(pod["metadata"]["annotations"])},
    }


def _params(
    member: str, max_unavailable: int, timeout: float = 0.4, named: bool = False
) -> dict[str, Any]:
    return {
        "zones": [{"cluster": "c1", "namespace": "ns", "selector": SELECTOR, "expected": 5}],
        "maxUnavailable": max_unavailable,
        "member": member,
        "timeout": timeout,
        "interval": 0.01,
        **({"cluster": "c1", "namespace": "ns"} if named else {}),
    }


async def _gate(
    cluster: Cluster, member: str, max_unavailable: int, named: bool = False
) -> dict[str, Any]:
    ctx = TaskContext("run", f"gate-{member}", 1, {"c1": cluster}, logging.getLogger("t"))
    params = GateParams(**_params(member, max_unavailable, named=named))
    return await disruption_gate(params, ctx)


@pytest.mark.parametrize("named", [False, True], ids=["counted-first", "claimed-first"])
async def test_concurrent_gates_share_the_last_room_one_at_a_time(named: bool) -> None:
    pods = [_pod(f"zk-{i}", ready=i != 4) for i in range(5)]
    cluster = Cluster(pods)

    results = await asyncio.gather(
        _gate(cluster, "zk-0", 2, named), _gate(cluster, "zk-1", 2, named), return_exceptions=True
    )

    passed = [r for r in results if isinstance(r, dict)]
    waited = [r for r in results if isinstance(r, RetryableError)]
    assert len(passed) == 1 and len(waited) == 1, results
    claimed = [
        n for n, p in cluster.pods.items() if DISRUPTING_ANNOTATION in p["metadata"]["annotations"]
    ]
    assert len(claimed) == 1, "the gate that waited dropped its claim"


@pytest.mark.parametrize("named", [False, True], ids=["counted-first", "claimed-first"])
async def test_concurrent_gates_pass_together_when_the_budget_has_room(named: bool) -> None:
    cluster = Cluster([_pod(f"zk-{i}", ready=True) for i in range(5)])

    results = await asyncio.gather(
        _gate(cluster, "zk-0", 2, named), _gate(cluster, "zk-1", 2, named)
    )

    assert max(r["down"] for r in results) == 1, "the gate that read last saw the other's claim"


async def test_an_expired_claim_does_not_count() -> None:
    stale = {DISRUPTING_ANNOTATION: f"{time.time() - 1:.3f}"}
    live = {DISRUPTING_ANNOTATION: f"{time.time() + 60:.3f}"}
    pods = [_pod(f"zk-{i}", True) for i in range(5)]
    pods[1]["metadata"]["annotations"].update(stale)
    cluster = Cluster(pods)
    assert (await _gate(cluster, "zk-0", 1))["down"] == 0
    cluster.pods["zk-0"]["metadata"]["annotations"].clear()
    cluster.pods["zk-2"]["metadata"]["annotations"].update(live)
    with pytest.raises(RetryableError, match="1 member"):
        await _gate(cluster, "zk-0", 1)


async def test_a_gate_that_claimed_first_and_found_no_room_drops_its_claim_and_waits() -> None:
    pods = [_pod(f"zk-{i}", ready=i not in (3, 4)) for i in range(5)]
    cluster = Cluster(pods)

    with pytest.raises(RetryableError, match="2 member"):
        await _gate(cluster, "zk-0", 2, named=True)

    assert DISRUPTING_ANNOTATION not in cluster.pods["zk-0"]["metadata"]["annotations"]


async def test_a_member_already_down_passes_at_once_when_claimed_first() -> None:
    pods = [_pod(f"zk-{i}", ready=i not in (0, 3, 4)) for i in range(5)]
    cluster = Cluster(pods)

    result = await _gate(cluster, "zk-0", 2, named=True)

    assert result["memberDown"] is True


def _zones_gate(member: str, one_zone: bool) -> GateParams:
    zones = [
        {"cluster": c, "namespace": "ns", "selector": SELECTOR, "expected": 3} for c in ("a", "b")
    ]
    return GateParams(
        zones=zones,
        maxUnavailable=3,
        member=member,
        oneZone=one_zone,
        timeout=0.3,
        interval=0.01,
    )


async def test_a_whole_zone_gate_waits_while_another_zone_has_a_member_down() -> None:
    zone_a = Cluster([_pod(f"kafka-a-{i}", ready=i != 2) for i in range(3)])
    zone_b = Cluster([_pod(f"kafka-b-{i}", ready=True) for i in range(3)])
    ctx = TaskContext("run", "gate", 1, {"a": zone_a, "b": zone_b}, logging.getLogger("t"))

    with pytest.raises(RetryableError, match=r"1 member\(s\) down \(1 in other zones\)"):
        await disruption_gate(_zones_gate("kafka-b-0", one_zone=True), ctx)
    assert (await disruption_gate(_zones_gate("kafka-a-0", one_zone=True), ctx))["down"] == 1, (
        "a member down in the member's own zone leaves the zone's room"
    )
    zone_a.pods["kafka-a-0"]["metadata"]["annotations"].clear()
    assert (await disruption_gate(_zones_gate("kafka-b-0", one_zone=False), ctx))["down"] == 1


async def test_a_whole_zone_gate_counts_claims_in_other_zones_as_down() -> None:
    live = {DISRUPTING_ANNOTATION: f"{time.time() + 60:.3f}"}
    zone_a = Cluster([_pod(f"kafka-a-{i}", ready=True) for i in range(3)])
    zone_a.pods["kafka-a-1"]["metadata"]["annotations"].update(live)
    zone_b = Cluster([_pod(f"kafka-b-{i}", ready=True) for i in range(3)])
    ctx = TaskContext("run", "gate", 1, {"a": zone_a, "b": zone_b}, logging.getLogger("t"))

    with pytest.raises(RetryableError, match="in other zones"):
        await disruption_gate(_zones_gate("kafka-b-0", one_zone=True), ctx)
    assert (await disruption_gate(_zones_gate("kafka-a-0", one_zone=True), ctx))["down"] == 1
