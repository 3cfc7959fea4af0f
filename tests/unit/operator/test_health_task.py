"""The health-report task records a change before telling it, and a change recorded by a
check that died before telling it is told by the next check, once."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from lightkube import ApiError

from milkyway.flows.tasks import RetryableError, TaskContext
from milkyway.operator.health import task as health_task
from milkyway.operator.health.checks import ZonePods
from milkyway.operator.health.targets import ZoneTarget
from milkyway.operator.health.task import HealthChecker, HealthParams

from .test_health_checks import pod, target


class _Obj(dict):
    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class FakeManagement:
    """The Application as the management cluster keeps it, with a write that can fail."""

    def __init__(self) -> None:
        self.app: dict[str, Any] = {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Application",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"},
            "spec": {},
            "status": {"phase": "Running"},
        }
        self.fail_writes = 0

    async def replace(self, obj: Any, name: str, namespace: str) -> _Obj:
        if self.fail_writes:
            self.fail_writes -= 1
            raise ApiError(
                request=None,  # type: ignore[arg-type]
                response=_Response(409),  # type: ignore[arg-type]
            )
        self.app["status"] = copy.deepcopy(obj.to_dict()["status"])
        return _Obj(copy.deepcopy(self.app))


class _Response:
    def __init__(self, code: int) -> None:
        self.status_code = code

    def json(self) -> dict[str, Any]:
        return {"code": self.status_code, "message": "conflict", "status": "Failure"}


class FakeMember:
    """The pods of the one zone, as the operator's member cache holds them."""

    def __init__(self) -> None:
        self.pods = [pod("zk-phx-0")]

    def read_zone(self, zone: ZoneTarget) -> ZonePods:
        return ZonePods(zone, pods=list(self.pods))


class FakeCenter:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.crash_next = False

    async def validate(self, app: Any) -> list[str]:
        return []

    async def emit(self, event: Any, app: Any) -> list[str]:
        if self.crash_next:
            self.crash_next = False
            raise ConnectionError("the operator died here")
        self.events.append((event.trigger, event.once_per))
        return []


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeManagement, FakeMember, FakeCenter, Any]:
    mgmt, member, center = FakeManagement(), FakeMember(), FakeCenter()
    monkeypatch.setattr(health_task, "zone_targets", lambda wisb: [target("zk", "phx", 1)])
    checker = HealthChecker(
        mgmt,  # type: ignore[arg-type]
        lambda key: object(),
        center,
        application_of=lambda key: copy.deepcopy(mgmt.app),
        read_zone=member.read_zone,
    )
    return mgmt, member, center, checker


def ctx(member: FakeMember) -> TaskContext:
    return TaskContext("run-1", "report", 1, {}, logging.getLogger("t"))


PARAMS = HealthParams(application="a", namespace="ns")


async def test_a_change_is_recorded_then_told_once(world: Any) -> None:
    mgmt, member, center, checker = world
    await checker.report(PARAMS, ctx(member))
    member.pods = [pod("zk-phx-0", False)]
    await checker.report(PARAMS, ctx(member))
    await checker.report(PARAMS, ctx(member))
    assert center.events == [("health-unhealthy", "1")]
    health = mgmt.app["status"]["health"]
    assert health["transitions"] == health["announced"] == 1
    assert health["lastTrigger"] == "health-unhealthy" and health["was"] == "Healthy"


async def test_a_write_that_fails_tells_nothing(world: Any) -> None:
    mgmt, member, center, checker = world
    await checker.report(PARAMS, ctx(member))
    member.pods = [pod("zk-phx-0", False)]
    mgmt.fail_writes = 1
    with pytest.raises(RetryableError, match=r"write status\.health"):
        await checker.report(PARAMS, ctx(member))
    assert center.events == []


async def _unhealthy_and_died_before_telling(
    member: FakeMember, center: FakeCenter, checker: HealthChecker
) -> None:
    """A Healthy report, then the member fails and the check that records it dies before
    telling (the change is recorded, not announced)."""
    await checker.report(PARAMS, ctx(member))
    member.pods = [pod("zk-phx-0", False)]
    center.crash_next = True
    with pytest.raises(ConnectionError):
        await checker.report(PARAMS, ctx(member))


async def test_a_check_that_died_before_telling_is_told_by_the_next_even_if_healed(
    world: Any,
) -> None:
    mgmt, member, center, checker = world
    await _unhealthy_and_died_before_telling(member, center, checker)
    assert mgmt.app["status"]["health"]["status"] == "Unhealthy"
    assert mgmt.app["status"]["health"]["announced"] == 0
    member.pods = [pod("zk-phx-0")]  # healed before the next check
    await checker.report(PARAMS, ctx(member))
    assert center.events == [("health-unhealthy", "1"), ("health-recovered", "2")]
    await checker.report(PARAMS, ctx(member))
    assert len(center.events) == 2
    assert mgmt.app["status"]["health"]["announced"] == 2


async def test_a_quiet_check_writes_the_report_without_a_run_when_there_is_nothing_to_tell(
    world: Any,
) -> None:
    mgmt, _, center, checker = world
    assert await checker.check_quietly(("ns", "a")) is True
    health = mgmt.app["status"]["health"]
    assert health["status"] == "Healthy" and health["run"] == ""
    assert await checker.check_quietly(("ns", "a")) is True
    assert len(mgmt.app["status"]["health"]["history"]) == 2
    assert center.events == []


async def test_a_quiet_check_with_a_change_to_tell_leaves_it_to_a_run_and_writes_nothing(
    world: Any,
) -> None:
    mgmt, member, center, checker = world
    await checker.check_quietly(("ns", "a"))
    before = copy.deepcopy(mgmt.app["status"])
    member.pods = [pod("zk-phx-0", False)]
    assert await checker.check_quietly(("ns", "a")) is False
    assert mgmt.app["status"] == before and center.events == []
    await checker.report(PARAMS, ctx(member))  # the run tells it
    assert center.events == [("health-unhealthy", "1")]
    assert await checker.check_quietly(("ns", "a")) is True  # told: nothing new


async def test_a_quiet_check_leaves_an_untold_change_to_a_run(world: Any) -> None:
    mgmt, member, center, checker = world
    await _unhealthy_and_died_before_telling(member, center, checker)
    member.pods = [pod("zk-phx-0")]
    assert await checker.check_quietly(("ns", "a")) is False
    assert mgmt.app["status"]["health"]["announced"] == 0


async def test_a_quiet_check_whose_write_is_refused_leaves_it_to_a_run(world: Any) -> None:
    mgmt, _, _, checker = world
    mgmt.fail_writes = 1
    assert await checker.check_quietly(("ns", "a")) is False
    assert "health" not in mgmt.app["status"]


async def test_a_quiet_check_of_an_application_not_rendered_yet_leaves_it_to_a_run(
    world: Any,
) -> None:
    mgmt, _, _, checker = world
    checker.wisb_of = lambda key: None
    assert await checker.check_quietly(("ns", "a")) is False
    assert "health" not in mgmt.app["status"]
