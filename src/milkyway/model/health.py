"""Scheduled health checks of an Application: what the user asks (``spec.healthCheck``)
and what the operator found (``status.health``).

The operator runs the health-check flow of every Application on its cron schedule; each
run reads the members' pods and workloads in every zone and writes one report. A finding
names the member, the check, the value observed and since when it holds, so a person
paged at night reads what is wrong without opening a cluster.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator

from milkyway.model.base import Model

HealthCheckName = Literal["members", "quorum"]
"""``members``: every member Ready and running the desired version and config;
``quorum``: per component type, enough Ready members for the system to serve."""

HEALTH_CHECKS: tuple[HealthCheckName, ...] = ("members", "quorum")
HealthState = Literal["Healthy", "Degraded", "Unhealthy", "Unknown"]


def _check_cron(value: str | None, field: str) -> str | None:
    if value is not None and not croniter.is_valid(value):
        raise ValueError(
            f"{field} {value!r} is not a cron expression; use five fields like '*/5 * * * *'"
        )
    return value


class HealthCheckSpec(Model):
    """When and how the operator checks an Application's health."""

    enabled: bool = True
    """Run the scheduled checks (off: ``status.health`` is no longer updated)."""
    cron: str = "*/5 * * * *"
    """When to check, as a five-field cron expression (default: every 5 minutes)."""
    timezone: str = "UTC"
    """IANA time zone the cron expression is read in."""
    checks: list[HealthCheckName] = Field(default_factory=lambda: list(HEALTH_CHECKS))
    """Which checks to run."""
    heartbeat: str | None = None
    """Cron of the heartbeat report sent to ``heartbeat`` subscribers, healthy or not."""
    history: int = Field(default=10, ge=0, le=100)
    """How many past reports ``status.health.history`` keeps."""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value, "spec.healthCheck.cron") or value

    @field_validator("heartbeat")
    @classmethod
    def _heartbeat(cls, value: str | None) -> str | None:
        return _check_cron(value, "spec.healthCheck.heartbeat")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"spec.healthCheck.timezone {value!r} is unknown; "
                "use an IANA name like 'Asia/Shanghai' or 'UTC'"
            ) from None
        return value


class HealthFinding(Model):
    """One thing found wrong."""

    component: str
    zone: str = ""
    """Empty for a finding about the whole component (e.g. its quorum)."""
    member: str = ""
    """Pod of the member, when the finding is about one."""
    check: str
    """``member-ready``, ``member-updated``, ``member-missing``, ``quorum``, ``brokers``."""
    severity: Literal["Degraded", "Unhealthy"]
    observed: str
    """What was seen, e.g. ``CrashLoopBackOff (restarts 4)`` or ``2/5 ready, need 3``."""
    since: str
    """RFC 3339 time of the first report with this finding."""


class ZoneHealth(Model):
    status: HealthState
    ready: int = 0
    desired: int = 0


class ComponentHealth(Model):
    status: HealthState
    type: str = ""
    zones: dict[str, ZoneHealth] = Field(default_factory=dict)


class HealthHistoryEntry(Model):
    checked_at: str
    status: HealthState
    findings: int = 0


class HealthStatus(Model):
    """The last health report and a short history."""

    status: HealthState
    """Unhealthy: a component cannot serve (quorum lost); Degraded: it serves with a
    member down or stale; Healthy: nothing found."""
    checked_at: str
    since: str
    """When ``status`` last changed."""
    run: str = ""
    """The FlowRun that made the report."""
    transitions: int = 0
    """How many times ``status`` changed; numbers each change for notifications."""
    announced: int = 0
    """The last change whose notifications were started: a report is written before its
    news is told, so a check that dies in between leaves ``announced < transitions`` and
    the next check tells it."""
    last_trigger: str = ""
    """The trigger of the last change (``health-unhealthy``, …)."""
    was: str = ""
    """``status`` before the last change."""
    components: dict[str, ComponentHealth] = Field(default_factory=dict)
    findings: list[HealthFinding] = Field(default_factory=list)
    history: list[HealthHistoryEntry] = Field(default_factory=list)
    """Past reports, newest first, at most ``spec.healthCheck.history``."""
