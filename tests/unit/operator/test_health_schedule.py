"""Per-Application health schedules: fire times, Skip while a check runs, heartbeats."""

from __future__ import annotations

from typing import Any

from milkyway.flows.store import AlreadyExists
from milkyway.operator.health.schedule import FLOW, HealthSchedules


class FakeEngine:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, dict[str, Any], str]] = []
        self.phases: dict[str, str] = {}
        """The phase of each run, as the operator's FlowRun watch holds it."""

    def phase(self, namespace: str, name: str) -> str | None:
        return self.phases.get(name)

    async def submit(self, flow: str, params: dict[str, Any], **kw: Any) -> str:
        if kw["name"] in self.phases:
            raise AlreadyExists(kw["name"])
        self.submitted.append((flow, params, kw["name"]))
        self.phases[kw["name"]] = "Running"
        return str(kw["name"])


def app(health: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"healthCheck": health}}


async def test_a_check_fires_at_each_cron_time_and_skips_while_one_runs() -> None:
    now = [1_000_000.0]  # a whole minute: 16666 * 60 + 40
    engine = FakeEngine()
    apps = {("ns", "a"): app({"cron": "* * * * *"})}
    schedules = HealthSchedules(
        lambda: apps, lambda ns: engine, clock=lambda: now[0], run_phase=engine.phase
    )
    assert await schedules.tick() == []  # first look: the next fire time is computed
    delay = schedules._entries[(("ns", "a"), "health")].spread
    assert 0 <= delay < 30
    now[0] = 1_000_020.0 + delay - 0.01
    assert await schedules.tick() == []
    now[0] = 1_000_020.0 + delay
    assert await schedules.tick() == ["a-health-1000020"]
    assert engine.submitted[0][0] == FLOW
    assert engine.submitted[0][1] == {
        "application": "a",
        "namespace": "ns",
        "heartbeat": False,
        "fired": 1000020,
    }
    now[0] += 60
    assert await schedules.tick() == []  # the first is still running: Skip
    assert schedules.fired[-1][3].startswith("skipped")
    engine.phases["a-health-1000020"] = "Succeeded"
    now[0] += 60
    assert await schedules.tick() == ["a-health-1000140"]


async def test_a_disabled_check_never_fires_and_a_heartbeat_has_its_own_cron() -> None:
    now = [1_000_000.0]
    engine = FakeEngine()
    apps = {
        ("ns", "off"): app({"enabled": False}),
        ("ns", "hb"): app({"cron": "0 0 1 1 *", "heartbeat": "* * * * *"}),
    }
    schedules = HealthSchedules(
        lambda: apps, lambda ns: engine, clock=lambda: now[0], run_phase=engine.phase
    )
    await schedules.tick()
    now[0] += 20 + 30
    started = await schedules.tick()
    assert started == ["hb-heartbeat-1000020"]
    assert engine.submitted[0][1]["heartbeat"] is True


async def test_an_application_gone_is_forgotten() -> None:
    now = [1_000_000.0]
    engine = FakeEngine()
    apps = {("ns", "a"): app({})}
    schedules = HealthSchedules(
        lambda: apps, lambda ns: engine, clock=lambda: now[0], run_phase=engine.phase
    )
    await schedules.tick()
    apps.clear()
    now[0] += 600
    assert await schedules.tick() == []
    assert schedules._entries == {}


async def test_applications_added_while_a_tick_submits_do_not_break_it() -> None:
    now = [1_000_000.0]
    apps = {("ns", f"a{i}"): app({"cron": "* * * * *"}) for i in range(3)}

    class Growing(FakeEngine):
        async def submit(self, flow: str, params: dict[str, Any], **kw: Any) -> str:
            apps[("ns", f"new-{len(apps)}")] = app({})
            return await super().submit(flow, params, **kw)

    engine = Growing()
    schedules = HealthSchedules(
        lambda: apps, lambda ns: engine, clock=lambda: now[0], run_phase=engine.phase
    )
    await schedules.tick()
    now[0] += 20 + 30
    assert len(await schedules.tick()) == 3


def test_the_spread_is_stable_bounded_and_differs_between_applications() -> None:
    from milkyway.operator.health.schedule import spread

    delays = {spread(("ns", f"a{i}"), "health", 300.0) for i in range(100)}
    assert all(0 <= d < 30 for d in delays) and len(delays) == 100
    assert spread(("ns", "a1"), "health", 300.0) == spread(("ns", "a1"), "health", 300.0)
    assert spread(("ns", "a1"), "health", 2.0) < 1.0


async def _past_first_fire(
    apps: dict[tuple[str, str], dict[str, Any]],
    engine: FakeEngine,
    now: list[float],
    check: Any,
    **kw: Any,
) -> HealthSchedules:
    """Schedules with a quiet ``check``, their fire times computed and the clock moved past
    the first one (and its spread)."""
    schedules = HealthSchedules(
        lambda: apps,
        lambda ns: engine,
        clock=lambda: now[0],
        run_phase=engine.phase,
        check=check,
        **kw,
    )
    await schedules.tick()
    now[0] += 20 + 30
    return schedules


async def test_a_quiet_check_that_is_done_starts_no_run_and_one_with_news_starts_one() -> None:
    now = [1_000_000.0]
    engine = FakeEngine()
    apps = {("ns", "a"): app({"cron": "* * * * *", "heartbeat": "* * * * *"})}
    answers = [True, False]
    checked: list[tuple[str, str]] = []

    async def check(key: tuple[str, str]) -> bool:
        checked.append(key)
        return answers.pop(0)

    schedules = await _past_first_fire(apps, engine, now, check)
    # The check was done quietly; the heartbeat is always a run.
    assert await schedules.tick() == ["a-heartbeat-1000020"]
    assert checked == [("ns", "a")]
    assert [f[3] for f in schedules.fired if f[1] == "health"] == ["checked"]
    engine.phases["a-heartbeat-1000020"] = "Succeeded"
    now[0] += 60
    # Something to tell: the check becomes a run.
    assert sorted(await schedules.tick()) == ["a-health-1000080", "a-heartbeat-1000080"]
    assert checked == [("ns", "a")] * 2


async def test_a_quiet_check_that_raises_becomes_a_run() -> None:
    now = [1_000_000.0]
    engine = FakeEngine()
    apps = {("ns", "a"): app({"cron": "* * * * *"})}

    async def check(key: tuple[str, str]) -> bool:
        raise ConnectionError("management cluster unreachable")

    schedules = await _past_first_fire(apps, engine, now, check)
    assert await schedules.tick() == ["a-health-1000020"]


async def test_a_replica_checks_only_the_applications_of_its_shards() -> None:
    now = [1_000_000.0]
    engine = FakeEngine()
    apps = {("ns", name): app({"cron": "* * * * *"}) for name in ("mine", "theirs")}
    owned = {("ns", "mine")}
    checked: list[tuple[str, str]] = []

    async def check(key: tuple[str, str]) -> bool:
        checked.append(key)
        return True

    schedules = await _past_first_fire(apps, engine, now, check, owns=lambda key: key in owned)
    await schedules.tick()
    assert checked == [("ns", "mine")]
    owned.add(("ns", "theirs"))  # its shard moved here: checked from its next fire time
    await schedules.tick()
    now[0] += 60
    await schedules.tick()
    assert sorted(checked) == [("ns", "mine"), ("ns", "mine"), ("ns", "theirs")]
