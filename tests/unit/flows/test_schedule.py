"""Cron schedules: time zones, missed fires, and overlap policies."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, FlowError, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.schedule import Scheduler, check_schedule, decide_overlap, next_fire
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext
from milkyway.model.flow import Schedule

HEALTH = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {{name: health}}
spec:
  schedule: {{cron: "*/5 * * * *", timezone: Asia/Shanghai, overlapPolicy: {policy}}}
  steps:
    - {{name: check, action: test.slow}}
"""


def test_next_fire_respects_the_time_zone() -> None:
    daily = Schedule(cron="30 9 * * *", timezone="Asia/Shanghai")
    start = datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    fire = datetime.fromtimestamp(next_fire(daily, start), ZoneInfo("Asia/Shanghai"))
    assert (fire.hour, fire.minute, fire.day) == (9, 30, 1)
    assert datetime.fromtimestamp(next_fire(daily, start), ZoneInfo("UTC")).hour == 1


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(FlowError, match="not a cron expression"):
        check_schedule("f", Schedule(cron="every minute"))
    with pytest.raises(FlowError, match="timezone 'Mars/Base'"):
        check_schedule("f", Schedule(cron="* * * * *", timezone="Mars/Base"))


def test_overlap_decisions() -> None:
    assert decide_overlap("Skip", []).start
    assert not decide_overlap("Skip", ["r1"]).start
    assert decide_overlap("Replace", ["r1"]).cancel == ["r1"]
    queued = decide_overlap("Queue", ["r1"])
    assert queued.start and not queued.cancel


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 1, tzinfo=ZoneInfo("UTC")).timestamp()

    def __call__(self) -> float:
        return self.now


async def _scheduled(policy: str) -> tuple[MemoryStore, list[list[str]], asyncio.Event]:
    release = asyncio.Event()
    registry = REGISTRY.copy()

    @registry.task("test.slow")
    async def slow(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        await release.wait()
        return {}

    clock = Clock()
    store = MemoryStore()
    engine = Engine(
        store,
        Catalog(load_flows(HEALTH.format(policy=policy))),
        registry=registry,
        clock=clock,
        poll_interval=0.02,
    )
    scheduler = Scheduler(engine)
    fired: list[list[str]] = []
    async with engine:
        await scheduler.tick()
        for _ in range(4):
            clock.now += 300
            fired.append(await scheduler.tick())
            await asyncio.sleep(0.1)
            runs = await store.list()
            running = [r for r in runs if r.status.phase == "Running"]
            assert len(running) <= 1, f"{policy}: {len(running)} runs at once"
        release.set()
        for run in await store.list():
            await engine.wait(run.metadata.name, 10)
    return store, fired, release


async def test_skip_never_starts_a_second_run_while_one_runs() -> None:
    store, fired, _ = await _scheduled("Skip")
    assert [len(f) for f in fired] == [1, 0, 0, 0]
    assert [r.status.phase for r in await store.list()] == ["Succeeded"]


async def test_queue_starts_runs_one_after_another() -> None:
    store, fired, _ = await _scheduled("Queue")
    assert [len(f) for f in fired] == [1, 1, 1, 1]
    runs = sorted(await store.list(), key=lambda r: r.status.started_at or 0)
    assert all(r.status.phase == "Succeeded" for r in runs)
    for before, after in itertools.pairwise(runs):
        assert (after.status.started_at or 0) >= (before.status.finished_at or 0)


async def test_replace_cancels_the_running_run() -> None:
    store, _fired, _ = await _scheduled("Replace")
    phases = sorted(r.status.phase for r in await store.list())
    assert phases == ["Cancelled", "Cancelled", "Cancelled", "Succeeded"]


async def test_missed_fire_times_collapse_into_one_run() -> None:
    registry = REGISTRY.copy()

    @registry.task("test.slow")
    async def quick(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        return {}

    clock = Clock()
    store = MemoryStore()
    catalog = Catalog(load_flows(HEALTH.format(policy="Skip")))
    engine = Engine(store, catalog, registry=registry, clock=clock, poll_interval=0.02)
    async with engine:
        first = Scheduler(engine)
        await first.tick()
        clock.now += 300
        started = await first.tick()
        assert len(started) == 1
        await engine.wait(started[0], 10)
        # The engine is down for 20 minutes (four fire times), then a new one starts.
        clock.now += 1200
        restarted = Scheduler(engine)
        assert len(await restarted.tick()) == 1
        assert await restarted.tick() == []
        for run in await store.list():
            await engine.wait(run.metadata.name, 10)
    assert len(await store.list()) == 2
