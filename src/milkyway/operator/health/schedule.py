"""Per-Application health-check schedules, driven by the operator.

Each Application's ``spec.healthCheck`` gives a cron schedule (and optionally one for the
heartbeat). At each fire time of the check, the operator first checks quietly (``check``:
judge from its caches and write ``status.health``, one request); only a check with
something to tell (a change of health, a change not yet told) or that cannot finish so
(not rendered yet, a write refused) becomes a ``milkyway-health-report`` run in the
engine of the Application's namespace, which tells it durably and retries. A heartbeat
is always a run: it sends a report. A thousand Applications checked every five minutes
are then a few status writes a second, not a few thousand FlowRuns an hour.

Fire times are computed and overlaps decided by the engine's scheduler functions
(:func:`~milkyway.flows.schedule.next_fire`,
:func:`~milkyway.flows.schedule.decide_overlap`, policy ``Skip``: a health run still
running when the next check is due makes that one be skipped).

Each Application's checks start a fixed delay after the fire time (under 30 s and half
the period, from a digest of its name), so a thousand Applications on the same schedule
are not all checked in the same second. The run of a fire time has a name made of the
Application and the fire time, so a new leader (or a second replica) that fires the
same time again finds the run and starts nothing. The state is in memory: after a
restart, the next fire time is the next one from now (a missed check is not caught up,
the next one comes within a period), and nothing is listed, which keeps a thousand
Applications' schedules cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from milkyway.flows.dsl import FlowError
from milkyway.flows.schedule import FIRED_LABEL, SCHEDULE_LABEL, decide_overlap, next_fire
from milkyway.flows.store import AlreadyExists, StoreError
from milkyway.model.flow import TERMINAL_RUN_PHASES, Schedule
from milkyway.model.health import HealthCheckSpec

log = logging.getLogger("milkyway.operator.health")

FLOW = "milkyway-health-report"
HEALTH_LABEL = "milkyway.ebay.com/health-of"
AppKey = tuple[str, str]


@dataclass
class _Entry:
    due: float
    """The next fire time of the cron expression."""
    fingerprint: tuple[Any, ...]
    schedule: Schedule
    last_run: str = ""
    spread: float = 0.0
    """Seconds after ``due`` this Application's check actually starts."""


SPREAD = 30.0
"""At most this many seconds (and half the period) between a fire time and the start of
an Application's check: a thousand Applications on the default schedule would otherwise
all be checked in the same second, every five minutes."""


def spread(key: AppKey, kind: str, period: float) -> float:
    """A delay after each fire time, the same for an Application on every replica (a
    digest of its name), so the checks of many Applications are spread over time."""
    digest = hashlib.sha256(f"{key[0]}/{key[1]}/{kind}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * min(SPREAD, period / 2)


def run_name(application: str, kind: str, fired: float) -> str:
    return f"{application}-{kind}-{int(fired)}"


class HealthSchedules:
    """Fires the health checks (and heartbeats) of every Application when due."""

    def __init__(
        self,
        applications: Callable[[], Mapping[AppKey, Mapping[str, Any]]],
        engine_for: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
        *,
        run_phase: Callable[[str, str], str | None],
        check: Callable[[AppKey], Awaitable[bool]] | None = None,
        owns: Callable[[AppKey], bool] = lambda key: True,
    ) -> None:
        self.applications = applications
        self.owns = owns
        """Whether this replica checks an Application (its shard's; all when unsharded)."""
        self.engine_for = engine_for
        self.check = check
        """The quiet check (True: done, nothing to tell); None: every check is a run."""
        self.run_phase = run_phase
        """The phase of a FlowRun (namespace, name) as the operator's watch holds it
        (None: not there): whether the last check still runs, without a read per fire."""
        self.clock = clock
        self._entries: dict[tuple[AppKey, str], _Entry] = {}
        self._specs: dict[AppKey, tuple[Any, HealthCheckSpec | None]] = {}
        self.fired: list[tuple[AppKey, str, float, str]] = []
        """(Application, kind, fire time, outcome) of recent fire times, newest last."""

    def _spec(self, key: AppKey, app: Mapping[str, Any]) -> HealthCheckSpec | None:
        generation = (app.get("metadata") or {}).get("generation")
        cached = self._specs.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        try:
            spec: HealthCheckSpec | None = HealthCheckSpec.model_validate(
                (app.get("spec") or {}).get("healthCheck") or {}
            )
        except ValidationError:
            spec = None  # the reconcile reports an invalid spec on the Application
        self._specs[key] = (generation, spec)
        return spec

    async def tick(self) -> list[str]:
        """Check every Application that is due; returns the names of the runs started."""
        now = self.clock()
        started: list[str] = []
        # A copy: the informer's cache changes while this awaits its checks.
        source = self.applications()
        apps = {key: source[key] for key in list(source) if self.owns(key)}
        for key in [k for k in self._specs if k not in apps]:
            del self._specs[key]
        for entry_key in [k for k in self._entries if k[0] not in apps]:
            del self._entries[entry_key]
        for key, app in apps.items():
            if (app.get("metadata") or {}).get("deletionTimestamp"):
                continue
            spec = self._spec(key, app)
            wanted = {}
            if spec is not None and spec.enabled:
                wanted["health"] = spec.cron
                if spec.heartbeat:
                    wanted["heartbeat"] = spec.heartbeat
            for kind in ("health", "heartbeat"):
                cron = wanted.get(kind)
                if cron is None or spec is None:
                    self._entries.pop((key, kind), None)
                    continue
                fingerprint = (cron, spec.timezone)
                entry = self._entries.get((key, kind))
                if entry is None or entry.fingerprint != fingerprint:
                    schedule = Schedule(cron=cron, timezone=spec.timezone, overlap_policy="Skip")
                    due = next_fire(schedule, now)
                    self._entries[(key, kind)] = _Entry(
                        due,
                        fingerprint,
                        schedule,
                        spread=spread(key, kind, next_fire(schedule, due) - due),
                    )
                    continue
                if now < entry.due + entry.spread:
                    continue
                fired = entry.due
                entry.due = next_fire(entry.schedule, now)
                name = await self._fire(key, kind, fired, entry)
                if name:
                    started.append(name)
        return started

    async def _fire(self, key: AppKey, kind: str, fired: float, entry: _Entry) -> str:
        namespace, application = key
        engine = self.engine_for(namespace)
        active: list[str] = []
        if entry.last_run:
            phase = self.run_phase(namespace, entry.last_run)
            if phase is not None and phase not in TERMINAL_RUN_PHASES:
                active.append(entry.last_run)
        decision = decide_overlap("Skip", active)
        if not decision.start:
            self._record(key, kind, fired, decision.reason)
            return ""
        if kind == "health" and await self._checked(key):
            self._record(key, kind, fired, "checked")
            return ""
        name = run_name(application, kind, fired)
        with contextlib.suppress(AlreadyExists):
            await engine.submit(
                FLOW,
                {
                    "application": application,
                    "namespace": namespace,
                    "heartbeat": kind == "heartbeat",
                    "fired": int(fired),
                },
                name=name,
                requested_by="system:scheduler",
                labels={
                    HEALTH_LABEL: application,
                    SCHEDULE_LABEL: kind,
                    FIRED_LABEL: str(int(fired)),
                },
            )
        entry.last_run = name
        self._record(key, kind, fired, "started")
        return name

    async def _checked(self, key: AppKey) -> bool:
        """Whether the quiet check did the check (False: it needs a run)."""
        if self.check is None:
            return False
        try:
            return await self.check(key)
        except Exception as exc:
            # The run does what the quiet check could not, with its retries and record.
            log.warning("health check of %s/%s: %s: %s", *key, type(exc).__name__, exc)
            return False

    def _record(self, key: AppKey, kind: str, fired: float, outcome: str) -> None:
        self.fired.append((key, kind, fired, outcome))
        del self.fired[:-1000]

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.tick()
            except (StoreError, FlowError, OSError) as exc:
                log.warning("health schedules: %s: %s", type(exc).__name__, exc)
            except Exception:
                # Whatever it is, it must not stop the operator: the next tick tries again.
                log.exception("health schedules: tick failed")
            await asyncio.sleep(interval)
