"""The ``milkyway.health-report`` task: read every zone, judge, tell, write the report.

Bound to an operator (it reads the management cluster and the reconciler's rendering of
the Application). Notifications are started *before* the report is written: a task
that dies in between runs again, finds the old report, sees the same change and starts
the same deliveries, which already exist (their names come from the change's number),
so a change of health is announced once, never lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lightkube import ApiError, AsyncClient
from pydantic import BaseModel, ConfigDict

from milkyway.flows.tasks import (
    RetryableError,
    TaskContext,
    TaskRegistry,
    TaskSpec,
)
from milkyway.kube.resources import APPLICATION
from milkyway.model.health import HealthCheckSpec
from milkyway.notify import metrics
from milkyway.notify.triggers import Event
from milkyway.operator.health.checks import SEVERITY, ZonePods, evaluate
from milkyway.operator.health.targets import ZoneTarget, zone_targets

TASK = "milkyway.health-report"
HEALTH_CONDITION = "Healthy"
SETTLING_PHASES = (None, "Pending", "Provisioning")
"""Application phases in which missing members are expected: the health is Unknown."""


class HealthParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    application: str
    namespace: str
    heartbeat: bool = False
    fired: int = 0


@dataclass
class _Judged:
    """A report judged from the caches, not yet written."""

    obj: dict[str, Any]
    """The Application as read (its resourceVersion guards the write)."""
    report: dict[str, Any]
    trigger: str | None
    previous: dict[str, Any]

    @property
    def pending(self) -> bool:
        """A change recorded by an earlier check that was not told yet."""
        return int(self.previous.get("announced") or 0) < int(self.previous.get("transitions") or 0)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class HealthChecker:
    """Runs health reports for one operator: it reads the Application and each zone's
    pods from the operator's caches (``application_of``, ``read_zone``: see
    :mod:`milkyway.operator.health.reads`) and writes the report with the Application's
    resourceVersion as read, so a report judged from a cache that lagged is refused
    (409) and made again, never written over a newer status."""

    def __init__(
        self,
        client: AsyncClient,
        wisb_of: Callable[[tuple[str, str]], Any],
        center: Any = None,
        *,
        application_of: Callable[[tuple[str, str]], Mapping[str, Any] | None],
        read_zone: Callable[[ZoneTarget], ZonePods],
        now: Callable[[], str] = now_rfc3339,
    ) -> None:
        self.client = client
        self.wisb_of = wisb_of
        self.center = center
        self.application_of = application_of
        self.read_zone = read_zone
        self.now = now

    def _judge(self, key: tuple[str, str], run: str) -> _Judged | None:
        """The new report of ``key`` from the caches; None when the Application is gone.
        Raises RetryableError while the reconciler has not rendered it."""
        cached = self.application_of(key)
        if cached is None:
            return None
        obj = dict(cached)  # read only: the report and the write build new dicts
        spec = HealthCheckSpec.model_validate((obj.get("spec") or {}).get("healthCheck") or {})
        wisb = self.wisb_of(key)
        if wisb is None:
            raise RetryableError(f"{key[0]}/{key[1]} is not reconciled yet")
        reads = [self.read_zone(t) for t in zone_targets(wisb)]
        status = dict(obj.get("status") or {})
        previous = status.get("health")
        report, trigger = evaluate(
            reads,
            spec.checks,
            previous,
            self.now(),
            history=spec.history,
            run=run,
            settling=status.get("phase") in SETTLING_PHASES,
        )
        previous = previous or {}
        report["announced"] = int(previous.get("announced") or 0)
        report["lastTrigger"] = trigger or previous.get("lastTrigger", "")
        report["was"] = previous.get("status", "Unknown") if trigger else previous.get("was", "")
        return _Judged(obj, report, trigger, previous)

    async def check_quietly(self, key: tuple[str, str]) -> bool:
        """A scheduled check without a FlowRun, for when it has nothing to tell: judge
        from the caches and write ``status.health`` (one request). False when the check
        needs a durable run instead: a change of health to announce, a change recorded but
        not yet told, an Application not rendered yet, or a write refused (the run judges
        again from fresh state and retries); nothing is written then."""
        started = time.perf_counter()
        try:
            judged = self._judge(key, "")
        except RetryableError:
            return False
        if judged is None:
            return True
        if judged.trigger or judged.pending:
            return False
        try:
            await self._write(judged.obj, judged.report)
        except RetryableError:
            return False
        self._measure(key, judged.report, started)
        return True

    async def report(self, params: HealthParams, ctx: TaskContext) -> dict[str, Any]:
        started = time.perf_counter()
        key = (params.namespace, params.application)
        judged = self._judge(key, ctx.run_id)
        if judged is None:
            return {"skipped": "the Application is gone"}
        report, trigger, previous = judged.report, judged.trigger, judged.previous
        # The report first, then the news: what is told is always what is recorded.
        written = await self._write(judged.obj, report)
        if self.center is not None:
            await self.center.validate(written)
            told = False
            if judged.pending and previous.get("lastTrigger"):
                # A change recorded by a check that died before telling it.
                await self._tell(previous["lastTrigger"], previous, params, ctx, written)
                told = True
            if trigger:
                await self._tell(trigger, report, params, ctx, written)
                told = True
            if params.heartbeat:
                event = Event(
                    "heartbeat",
                    params.namespace,
                    params.application,
                    str(params.fired),
                    self._variables(report, ctx),
                )
                await self.center.emit(event, written)
            if told:
                report["announced"] = report["transitions"]
                await self._write(written, report)
        self._measure(key, report, started)
        return {
            "status": report["status"],
            "findings": len(report["findings"]),
            "trigger": trigger or "",
        }

    @staticmethod
    def _measure(key: tuple[str, str], report: dict[str, Any], started: float) -> None:
        metrics.HEALTH_CHECKS.labels(report["status"]).inc()
        metrics.HEALTH_STATUS.labels(*key).set(SEVERITY[report["status"]])
        metrics.HEALTH_FINDINGS.labels(*key).set(len(report["findings"]))
        metrics.HEALTH_SECONDS.observe(time.perf_counter() - started)

    @staticmethod
    def _variables(report: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        return {
            "status": report["status"],
            "previous": report.get("was") or "Unknown",
            "findings": report["findings"],
            "components": list(report["components"]),
            "checkedAt": report["checkedAt"],
            "run": report.get("run") or ctx.run_id,
        }

    async def _tell(
        self,
        trigger: str,
        report: dict[str, Any],
        params: HealthParams,
        ctx: TaskContext,
        app: dict[str, Any],
    ) -> None:
        """Start the deliveries of change number ``report.transitions`` (once per change:
        a repeat finds them started)."""
        event = Event(
            trigger,
            params.namespace,
            params.application,
            str(report["transitions"]),
            self._variables(report, ctx),
        )
        await self.center.emit(event, app)

    async def _write(self, obj: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
        status = dict(obj.get("status") or {})
        status["health"] = report
        conditions = [
            c for c in status.get("conditions") or [] if c.get("type") != HEALTH_CONDITION
        ]
        before = next(
            (c for c in status.get("conditions") or [] if c.get("type") == HEALTH_CONDITION), None
        )
        value = {"Healthy": "True", "Unknown": "Unknown"}.get(report["status"], "False")
        first = report["findings"][0] if report["findings"] else None
        message = (
            f"{len(report['findings'])} finding(s); first: {first['component']} "
            f"{first['zone']} {first['member']} {first['check']}: {first['observed']}"
            if first
            else "no findings"
        )
        conditions.append(
            {
                "type": HEALTH_CONDITION,
                "status": value,
                "reason": report["status"],
                "message": " ".join(message.split()),
                "lastTransitionTime": (
                    before.get("lastTransitionTime")
                    if before is not None and before.get("status") == value
                    else report["checkedAt"]
                ),
            }
        )
        status["conditions"] = conditions
        body = {**obj, "status": status}
        try:
            written = await self.client.replace(
                APPLICATION.Status.from_dict(body),
                obj["metadata"]["name"],
                namespace=obj["metadata"]["namespace"],
            )
        except ApiError as exc:
            # A reconcile wrote the status meanwhile: run again from fresh state (a change
            # recorded but not yet told is told then, once).
            raise RetryableError(
                f"write status.health: {exc.status.code} {exc.status.message}"
            ) from None
        return _dict(written)

    def register_tasks(self, registry: TaskRegistry) -> None:
        async def health_report(params: HealthParams, ctx: TaskContext) -> dict[str, Any]:
            return await self.report(params, ctx)

        registry.register(
            TaskSpec(
                TASK, HealthParams, health_report, "Check an Application's health and report it."
            )
        )
