"""What the operator adds to its session for health checks and notifications.

One object per session: the notification center (config, subscriptions, deliveries),
the health checker and the per-Application schedules (of the Applications this replica
owns: ``owns``), the retention of the runs they leave (one replica's job: the leader's
when sharded), and the tasks bound to them (``notify.deliver``,
``milkyway.health-report``) in the session's own task registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from lightkube import AsyncClient

from milkyway.flows.tasks import TaskRegistry
from milkyway.notify.center import NotificationCenter
from milkyway.operator.flow_events import flow_events
from milkyway.operator.health.checks import ZonePods
from milkyway.operator.health.schedule import HealthSchedules
from milkyway.operator.health.targets import ZoneTarget
from milkyway.operator.health.task import HealthChecker
from milkyway.operator.retention import PRUNE_INTERVAL, prune_forever

log = logging.getLogger("milkyway.operator")
AppKey = tuple[str, str]


class Notifying:
    """Health checks and notifications of one leader session."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        tasks: TaskRegistry,
        engine_for: Callable[[str], Any],
        applications: Callable[[], Mapping[AppKey, Mapping[str, Any]]],
        wisb_of: Callable[[AppKey], Any],
        recorder: Any,
        *,
        runs: Callable[[], Mapping[tuple[str, str], Mapping[str, Any]]],
        read_zone: Callable[[ZoneTarget], ZonePods],
        retention_interval: float = PRUNE_INTERVAL,
        config_ttl: float = 2.0,
        owns: Callable[[AppKey], bool] = lambda key: True,
    ) -> None:
        self.tasks = tasks.copy()
        self.center = NotificationCenter(
            client, namespace, engine_for, recorder, config_ttl=config_ttl
        )
        self.center.register_tasks(self.tasks)
        self.checker = HealthChecker(
            client,
            wisb_of,
            self.center,
            application_of=lambda key: applications().get(key),
            read_zone=read_zone,
        )
        self.checker.register_tasks(self.tasks)
        self.schedules = HealthSchedules(
            applications,
            engine_for,
            run_phase=self._run_phase,
            check=self.checker.check_quietly,
            owns=owns,
        )
        self._applications = applications
        self._runs = runs
        self._retention_interval = retention_interval
        self._seen: dict[tuple[str, str], tuple[Any, ...]] = {}

    def _run_phase(self, namespace: str, name: str) -> str | None:
        run = self._runs().get((namespace, name))
        return None if run is None else str((run.get("status") or {}).get("phase") or "Pending")

    async def retain(self) -> None:
        """The retention of every health and notification run (one replica's job)."""
        await prune_forever(
            self.center.client,
            lambda: self._runs().values(),
            time.time,
            self._retention_interval,
        )

    def observe(
        self, key: AppKey, run: Mapping[str, Any], event: str, *, first_seen: bool
    ) -> Coroutine[Any, Any, None] | None:
        """What to do about a FlowRun watch event: ``None`` unless what notifications
        read of the run (its phase, failed attempts, approvals) changed."""
        name = (run.get("metadata") or {}).get("name", "")
        seen_key = (key[0], name)
        if event == "DELETED":
            self._seen.pop(seen_key, None)
            return None
        status = run.get("status") or {}
        fingerprint = (
            status.get("phase"),
            tuple(
                (path, node.get("failures"), node.get("phase"))
                for path, node in (status.get("nodes") or {}).items()
                if node.get("failures") or node.get("kind") == "approval"
            ),
        )
        if self._seen.get(seen_key) == fingerprint:
            return None
        self._seen[seen_key] = fingerprint
        return self.run_changed(key, run, first_seen)

    async def run_changed(
        self, key: AppKey, run: Mapping[str, Any], first_seen: bool, now: float | None = None
    ) -> None:
        """Start the deliveries of what a FlowRun of ``key`` shows (each event once)."""
        app = self._applications().get(key)
        if app is None:
            return
        for event in flow_events(run, key[1], first_seen=first_seen, now=now or time.time()):
            try:
                await self.center.emit(event, app)
            except Exception as exc:
                # Whatever went wrong (the management cluster unreachable, a bad config),
                # the watch goes on; the event is told again when the run next changes.
                self._seen.pop((key[0], (run.get("metadata") or {}).get("name", "")), None)
                log.warning("%s/%s: notification of %s not started: %s", *key, event.trigger, exc)
