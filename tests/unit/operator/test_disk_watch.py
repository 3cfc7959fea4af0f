"""The operator's reading of agents' disk reports: the worst volume wins, a level is
written (condition and Event) only when it changes, so an alert is reported once, and
an agent that does not answer is asked less and less often."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.operator.disk_watch import (
    DiskLevel,
    DiskWatch,
    condition_patch,
    watched,
    worst_volume,
)

NOW = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


def _pod(reason: str | None = None, phase: str = "Running") -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": "True"}]
    if reason is not None:
        status = "False" if reason == "Ok" else "True"
        conditions.append({"type": DISK_ALERT_CONDITION, "status": status, "reason": reason})
    return {
        "metadata": {"name": "zk-0", "namespace": "ns"},
        "spec": {"containers": [{"name": "main"}, {"name": "milkyway-agent"}]},
        "status": {"phase": phase, "conditions": conditions},
    }


def test_the_worst_volume_is_reported_with_its_message() -> None:
    status = {
        "volumes": [
            {"volume": "logs", "level": "warning", "message": "/logs 85 % used"},
            {"volume": "data", "level": "critical", "message": "/data 95 % used"},
            {"volume": "tmp", "level": "ok", "message": "/tmp 1 % used"},
        ]
    }
    assert worst_volume(status) == DiskLevel("critical", "volume data: /data 95 % used")
    assert worst_volume({"volumes": []}).level == "ok"


def test_a_level_is_written_once_while_it_holds() -> None:
    critical = DiskLevel("critical", "volume data: /data 95 % used")
    patch = condition_patch(_pod(), critical, NOW)
    assert patch is not None
    (condition,) = patch["status"]["conditions"]
    assert condition["type"] == DISK_ALERT_CONDITION
    assert (condition["status"], condition["reason"]) == ("True", "Critical")
    assert condition["lastTransitionTime"] == "2026-12-07T06:00:00Z"
    assert condition_patch(_pod("Critical"), critical, NOW) is None
    cleared = condition_patch(_pod("Critical"), DiskLevel("ok", "fine"), NOW)
    assert cleared is not None
    assert cleared["status"]["conditions"][0]["reason"] == "Ok"
    assert cleared["status"]["conditions"][0]["status"] == "False"
    assert condition_patch(_pod("Ok"), DiskLevel("ok", "fine"), NOW) is None
    assert condition_patch(_pod(), DiskLevel("ok", "fine"), NOW) is None


def test_only_running_pods_with_an_agent_are_asked() -> None:
    assert watched(_pod())
    assert not watched(_pod(phase="Pending"))
    no_agent = _pod()
    no_agent["spec"]["containers"] = [{"name": "main"}]
    assert not watched(no_agent)
    leaving = _pod()
    leaving["metadata"]["deletionTimestamp"] = "2026-12-07T06:00:00Z"
    assert not watched(leaving)


async def test_an_agent_that_does_not_answer_is_asked_less_often(monkeypatch: Any) -> None:
    asked: list[str] = []

    async def silent(self: AgentClient) -> dict[str, Any]:
        asked.append(self.pod)
        raise AgentError(503, "no route to the pod")

    monkeypatch.setattr(AgentClient, "status", silent)
    pod = _pod()
    pod["metadata"]["uid"] = "uid-1"
    watch = DiskWatch(lambda: [("east", cast(Any, None), [pod])], interval=1.0)
    assert await watch.once() == 0
    assert await watch.once() == 0
    assert asked == ["zk-0"]
    failures, _ = watch._silent["uid-1"]
    watch._silent["uid-1"] = (failures, 0.0)
    await watch.once()
    assert asked == ["zk-0", "zk-0"]
    assert watch._silent["uid-1"][0] == 2
    # A pod that is gone is forgotten.
    gone = DiskWatch(lambda: [], interval=1.0)
    gone._silent = dict(watch._silent)
    await gone.once()
    assert gone._silent == {}


async def test_agents_are_asked_at_most_rate_a_second(monkeypatch: Any) -> None:
    asked: list[float] = []

    async def fine(self: AgentClient) -> dict[str, Any]:
        asked.append(time.monotonic())
        return {"volumes": []}

    monkeypatch.setattr(AgentClient, "status", fine)
    pods = []
    for i in range(6):
        pod = _pod()
        pod["metadata"]["name"] = f"zk-{i}"
        pod["metadata"]["uid"] = f"uid-{i}"
        pods.append(pod)
    watch = DiskWatch(lambda: [("east", cast(Any, None), pods)], interval=1.0, rate=10.0)
    assert await watch.once() == 0
    assert len(asked) == 6
    # Six agents at ten a second: the last is asked half a second after the first.
    assert asked[-1] - asked[0] >= 0.45
    with pytest.raises(ValueError, match="rate must be positive"):
        DiskWatch(lambda: [], rate=0)
