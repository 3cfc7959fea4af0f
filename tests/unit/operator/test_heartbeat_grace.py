"""A reachable member cluster counts as unreachable only after ``unreachable_after``
heartbeats missed in a row: one late answer (an API server pausing) must not make every
Application on it rewrite its status twice; a cluster never reached stays unreachable."""

from __future__ import annotations

import pytest

from milkyway.kube.version import Unreachable
from milkyway.operator import registry as registry_module
from milkyway.operator.registry import ClusterRegistry, MemberCluster


def _registry(changes: list[str], unreachable_after: int = 2) -> ClusterRegistry:
    return ClusterRegistry(
        None,  # type: ignore[arg-type]  (no Cluster status is written: publishes is off)
        {},
        on_member_change=lambda cluster, key: None,
        on_cluster_change=changes.append,
        unreachable_after=unreachable_after,
        publishes=lambda: False,
    )


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each next heartbeat is answered."""
    script: list[bool] = []

    async def server_version(client: object, within: float) -> str:
        if script.pop(0):
            return "v1.32.0"
        raise Unreachable("timed out")

    monkeypatch.setattr(registry_module, "server_version", server_version)
    return script


async def _beats(registry: ClusterRegistry, member: MemberCluster, n: int) -> list[bool]:
    seen = []
    for _ in range(n):
        await registry.heartbeat(member)
        seen.append(member.reachable)
    return seen


async def test_one_missed_heartbeat_is_not_an_outage(answers: list[bool]) -> None:
    changes: list[str] = []
    registry = _registry(changes)
    member = MemberCluster("c1", {}, client=object(), reachable=True)  # type: ignore[arg-type]
    answers += [True, False, True, False, False, True]
    assert await _beats(registry, member, 6) == [True, True, True, True, False, True]
    assert changes == ["c1", "c1"]  # down after the second miss in a row, then back


async def test_the_grace_is_counted_and_said(answers: list[bool]) -> None:
    registry = _registry([], unreachable_after=3)
    member = MemberCluster("c1", {}, client=object(), reachable=True)  # type: ignore[arg-type]
    answers += [False]
    await registry.heartbeat(member)
    assert member.reachable and member.missed == 1
    assert "unreachable after 2 more missed heartbeat(s)" in member.message


async def test_a_cluster_never_reached_has_no_grace(answers: list[bool]) -> None:
    changes: list[str] = []
    registry = _registry(changes)
    member = MemberCluster("c1", {}, client=object())  # type: ignore[arg-type]
    answers += [False, True]
    assert await _beats(registry, member, 2) == [False, True]
    assert member.reason == "Heartbeat" and changes == ["c1"]


def test_no_grace_below_one_heartbeat() -> None:
    with pytest.raises(ValueError, match="unreachable_after must be at least 1"):
        _registry([], unreachable_after=0)
