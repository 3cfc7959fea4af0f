"""Cron schedules for flows (periodic health checks and the like), with an overlap policy.

The decision of what to do when a fire time comes while earlier runs are still going is
a pure function (:func:`decide_overlap`); the :class:`Scheduler` only reads the clock,
lists runs and submits. Fire times missed while no engine was running collapse into one
run, as Kubernetes CronJobs do, so an outage does not unleash a backlog of checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from milkyway.flows.dsl import FlowError
from milkyway.kube.errors import is_unreachable
from milkyway.model.flow import TERMINAL_RUN_PHASES, Schedule

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = "system:scheduler"
SCHEDULE_LABEL = "milkyway.ebay.com/schedule"
FIRED_LABEL = "milkyway.ebay.com/fired-at"
"""Epoch second of the fire time a scheduled run was started for."""


def check_schedule(flow: str, schedule: Schedule) -> None:
    if not croniter.is_valid(schedule.cron):
        raise FlowError(
            f"flow {flow!r} schedule.cron {schedule.cron!r} is not a cron expression; "
            "use five fields like '*/5 * * * *'"
        )
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FlowError(
            f"flow {flow!r} schedule.timezone {schedule.timezone!r} is unknown; "
            "use an IANA name like 'Asia/Shanghai' or 'UTC'"
        ) from None


def next_fire(schedule: Schedule, after: float) -> float:
    """The first fire time strictly after ``after`` (epoch seconds), in the schedule's zone."""
    zone = ZoneInfo(schedule.timezone)
    start = datetime.fromtimestamp(after, zone)
    return float(croniter(schedule.cron, start).get_next(datetime).timestamp())


@dataclass(frozen=True)
class OverlapDecision:
    start: bool
    cancel: list[str] = field(default_factory=list)
    reason: str = ""


def decide_overlap(policy: str, active: list[str]) -> OverlapDecision:
    """What to do at a fire time while ``active`` scheduled runs of the flow are unfinished."""
    if not active:
        return OverlapDecision(True)
    if policy == "Skip":
        return OverlapDecision(False, reason=f"skipped: {', '.join(active)} still running")
    if policy == "Replace":
        return OverlapDecision(True, cancel=list(active), reason="replacing the running run")
    return OverlapDecision(True, reason="queued behind the running run")


class Scheduler:
    """Submits runs of every scheduled flow of an engine's catalog when they are due."""

    def __init__(self, engine: Any, flows: Callable[[], Collection[str]] | None = None) -> None:
        """``flows``: the names of the flows this scheduler fires (default: every flow of
        the catalog); the operator gives each namespace's scheduler that namespace's
        ``Flow`` resources, so a schedule fires once, next to its Flow."""
        self.engine = engine
        self.flows = flows
        self.next: dict[str, float] = {}
        self.log: list[tuple[str, float, str]] = []
        for name, schedule in self.schedules().items():
            check_schedule(name, schedule)

    def schedules(self) -> dict[str, Schedule]:
        names = self.engine.catalog.names()
        if self.flows is not None:
            mine = self.flows()
            names = [name for name in names if name in mine]
        found = {}
        for name in names:
            _, spec = self.engine.catalog.get(name)
            if spec.schedule is not None:
                found[name] = spec.schedule
        return found

    async def tick(self) -> list[str]:
        """Fire every schedule that is due; returns the names of runs submitted."""
        now = self.engine.clock()
        submitted: list[str] = []
        for flow, schedule in self.schedules().items():
            runs = [
                run
                for run in await self.engine.store.list()
                if run.metadata.labels.get(SCHEDULE_LABEL) == flow
            ]
            due = self.next.get(flow)
            if due is None:
                # First look at this schedule (or a restarted engine): continue from the
                # last fire time recorded on a run, so missed fire times give one run.
                fired = [int(r.metadata.labels.get(FIRED_LABEL, "0") or 0) for r in runs]
                last = max(fired, default=0)
                due = next_fire(schedule, last) if last else next_fire(schedule, now)
                self.next[flow] = due
            if now < due:
                continue
            self.next[flow] = next_fire(schedule, now)
            active = [r.metadata.name for r in runs if r.status.phase not in TERMINAL_RUN_PHASES]
            decision = decide_overlap(schedule.overlap_policy, active)
            self.log.append((flow, due, decision.reason or "started"))
            for name in decision.cancel:
                await self.engine.request(name, "cancel", SCHEDULER_ACTOR, reason=decision.reason)
            if decision.start:
                name = await self.engine.submit(
                    flow,
                    schedule.params,
                    target=schedule.target,
                    requested_by=SCHEDULER_ACTOR,
                    labels={SCHEDULE_LABEL: flow, FIRED_LABEL: str(int(due))},
                    locks=[f"1:schedule/{flow}"] if schedule.overlap_policy != "Skip" else [],
                )
                submitted.append(name)
        return submitted

    async def run(self, interval: float = 1.0) -> None:
        """Tick until cancelled; an API server that stops answering pauses the schedules
        (a missed fire time gives one run once it answers again, see :meth:`tick`)."""
        unreachable = False
        while True:
            try:
                with contextlib.suppress(FlowError):
                    await self.tick()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                if not unreachable:
                    log.warning("scheduler: the API server does not answer (%s); retrying", exc)
                unreachable = True
            else:
                unreachable = False
            await asyncio.sleep(interval)
