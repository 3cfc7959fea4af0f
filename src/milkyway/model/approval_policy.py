"""``ApprovalPolicy``: which lifecycle changes need whose approval, and the pure function
that answers it for one flow the operator is about to start.

A policy lives in a namespace and applies to the Applications of that namespace; the
policies in ``milkyway-system`` are the cluster-wide defaults and apply to every namespace
(narrowed with ``match.namespaces``). Every matching policy is a gate of its own, so a
namespace's policies add to the cluster-wide ones and never weaken them.

:func:`required_approvals` takes everything as plain data (the policies, the operation,
the flow, the namespace, the component type, the Application's labels and ``now``) and
never does I/O, so the table of who approves what is unit-tested as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from milkyway.model.base import API_VERSION, DnsLabel, Model, ObjectMeta
from milkyway.model.crd_schema import AGE_COLUMN, CrdInfo, PrinterColumn

CLUSTER_NAMESPACE = "milkyway-system"
"""Policies here are the cluster-wide defaults: they apply to every namespace."""

Operation = Literal[
    "provision",
    "decommission",
    "scale-out",
    "scale-in",
    "upgrade",
    "restart",
    "replace",
    "remediate",
    "config-change",
    "sudo",
]
"""``sudo`` is a request for time-bound elevation (``milkyway sudo``), not a flow of an
Application: it matches by namespace (and neither component types nor labels)."""

OPERATION_OF_FLOW_KIND: dict[str, str] = {
    "provision": "provision",
    "decommission": "decommission",
    "scale-out": "scale-out",
    "scale-in": "scale-in",
    "rolling-upgrade": "upgrade",
    "restart": "restart",
    "replace-member": "replace",
    "remediate": "remediate",
    "config-update": "config-change",
}
"""The planner's operation (the FlowRun's operation label) to the policy's name for it."""

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """``"4h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` to seconds (a positive amount)."""
    match = _DURATION.match(text.strip()) if text.strip() else None
    if match is None or not any(match.groups()):
        raise ValueError(f"duration {text!r} is not like 4h, 30m, 1h30m or 45s")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return float(total)


class LabelRequirement(Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit(self) -> LabelRequirement:
        needs = self.operator in ("In", "NotIn")
        if needs and not self.values:
            raise ValueError(f"matchExpressions {self.key!r}: {self.operator} needs values")
        if not needs and self.values:
            raise ValueError(f"matchExpressions {self.key!r}: {self.operator} takes no values")
        return self


class LabelSelector(Model):
    """A Kubernetes label selector; empty matches every Application."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirement] = Field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
            if req.operator == "In" and labels.get(req.key) not in req.values:
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
        return True


class PolicyMatch(Model):
    """What a policy applies to; an empty list matches everything of its kind."""

    operations: list[Operation] = Field(default_factory=list)
    flows: list[str] = Field(default_factory=list)
    """Flow names (``milkyway-rolling-upgrade``); a flow matches by operation or by name."""
    component_types: list[str] = Field(default_factory=list)
    selector: LabelSelector = Field(default_factory=LabelSelector)
    """Labels of the Application."""
    namespaces: list[DnsLabel] = Field(default_factory=list)
    """Only for policies in ``milkyway-system``: the namespaces they apply to."""


class Approvers(Model):
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    required: int = Field(default=1, ge=1, le=20)
    """Distinct approvers needed (N of the M named); the requester never counts."""
    timeout: str = "24h"
    """How long the gate waits (``4h``, ``30m``); then ``default`` applies, recorded as
    decided by ``system:timeout``."""
    default: Literal["approve", "reject"] = "reject"

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _enough(self) -> Approvers:
        if not self.users and not self.groups:
            raise ValueError(
                "approvals needs at least one of users or groups; name who may approve"
            )
        if not self.groups and self.required > len(self.users):
            raise ValueError(
                f"approvals.required is {self.required} but only {len(self.users)} user(s) "
                "are named and no group; name more users, add a group or lower required"
            )
        return self


class Window(Model):
    """A recurring window: it opens at each time of the cron ``schedule`` (in ``timeZone``)
    and stays open for ``duration``."""

    schedule: str
    duration: str
    time_zone: str = "UTC"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"schedule {value!r} is not a cron expression (like '0 2 * * 6')")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timeZone {value!r} is not an IANA time zone (like Europe/Berlin)"
            ) from None
        return value

    def open_at(self, now: datetime) -> bool:
        """True while a window that opened at or before ``now`` lasts."""
        local = now.astimezone(ZoneInfo(self.time_zone))
        opened = croniter(self.schedule, local + timedelta(seconds=1)).get_prev(datetime)
        return local < opened + timedelta(seconds=parse_duration(self.duration))

    def next_open(self, now: datetime) -> datetime:
        """When the window next opens after ``now`` (in UTC)."""
        local = now.astimezone(ZoneInfo(self.time_zone))
        return croniter(self.schedule, local).get_next(datetime).astimezone(UTC)


class Freeze(Model):
    """A change freeze: no matching flow starts from ``start`` until ``end``."""

    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("freeze start and end need a time zone, like 2026-12-24T00:00:00Z")
        if self.end <= self.start:
            raise ValueError(f"freeze ends ({self.end}) before it starts ({self.start})")
        return self


DEFAULT_SUDO_LIMIT = "1h"
LONGEST_SUDO = 24 * 3600.0


class SudoLimits(Model):
    """How long an elevation this policy approves may last."""

    max_duration: str = DEFAULT_SUDO_LIMIT
    """The longest ``--for`` a ``milkyway sudo`` request may ask (at most 24h)."""

    @field_validator("max_duration")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if parse_duration(value) > LONGEST_SUDO:
            raise ValueError(f"sudo.maxDuration {value!r} is longer than 24h; lower it")
        return value


class ApprovalPolicySpec(Model):
    match: PolicyMatch = Field(default_factory=PolicyMatch)
    approvals: Approvers | None = None
    """Who must approve; without it the policy only restricts when flows start."""
    auto_approve_in: Window | None = None
    """Inside this maintenance window the gate is passed without anyone (recorded)."""
    allowed_in: Window | None = None
    """Matching flows start only inside this maintenance window; outside it they wait."""
    freezes: list[Freeze] = Field(default_factory=list)
    """Change freezes: matching flows wait until the freeze ends."""
    override_groups: list[str] = Field(default_factory=list)
    """Members of these groups may lift the window and freezes for one Application for a
    while, with a reason, through milkyway server (``POST …/window-override``)."""
    sudo: SudoLimits | None = None
    """For policies matching ``sudo``: the longest elevation they approve (default 1h)."""

    @model_validator(mode="after")
    def _does_something(self) -> ApprovalPolicySpec:
        if self.approvals is None and self.allowed_in is None and not self.freezes:
            raise ValueError("the policy asks for nothing: set approvals, allowedIn or freezes")
        if self.approvals is None and self.auto_approve_in is not None:
            raise ValueError("autoApproveIn needs approvals to pass")
        return self

    message: str = ""
    """Shown to approvers with the gate."""


class WindowOverride(Model):
    """A lifted window or freeze: recorded by milkyway server after it checked the caller."""

    application: str
    """``namespace/name`` of the Application it applies to."""
    by: str
    reason: str
    at: datetime
    until: datetime


class ApprovalPolicyStatus(Model):
    overrides: list[WindowOverride] = Field(default_factory=list)
    """Written only by milkyway server (users hold no right on approvalpolicies/status)."""


class ApprovalPolicy(Model):
    """The ``ApprovalPolicy`` resource."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="approvalpolicies",
        short_names=("ap",),
        printer_columns=(
            PrinterColumn("Required", ".spec.approvals.required", type="integer"),
            PrinterColumn("Default", ".spec.approvals.default"),
            AGE_COLUMN,
        ),
    )
    api_version: Literal["milkyway.ebay.com/v1"] = API_VERSION
    kind: Literal["ApprovalPolicy"] = "ApprovalPolicy"
    metadata: ObjectMeta
    spec: ApprovalPolicySpec
    status: ApprovalPolicyStatus = Field(default_factory=ApprovalPolicyStatus)

    @field_validator("status", mode="before")
    @classmethod
    def _empty_status(cls, value: object) -> object:
        return {} if value is None else value

    def overridden(self, application: str, now: datetime) -> WindowOverride | None:
        """The override in force for ``application`` (``namespace/name``) at ``now``."""
        for entry in self.status.overrides:
            if entry.application == application and entry.at <= now < entry.until:
                return entry
        return None


@dataclass(frozen=True)
class Gate:
    """One approval a flow needs before it may touch anything."""

    policy: str
    """``namespace/name`` of the policy."""
    users: tuple[str, ...]
    groups: tuple[str, ...]
    required: int
    timeout: float
    default: str
    message: str = ""


@dataclass(frozen=True)
class Requirement:
    gates: tuple[Gate, ...]
    auto_approved: tuple[str, ...] = ()
    """Policies that matched but were passed inside their maintenance window."""


def applies(
    policy: ApprovalPolicy,
    *,
    operation: str,
    flow: str,
    namespace: str,
    component_type: str,
    labels: Mapping[str, str],
) -> bool:
    """Whether ``policy`` covers this flow of an Application in ``namespace``."""
    home = policy.metadata.namespace or ""
    match = policy.spec.match
    if home == CLUSTER_NAMESPACE:
        if match.namespaces and namespace not in match.namespaces:
            return False
    elif home != namespace:
        return False
    kind = OPERATION_OF_FLOW_KIND.get(operation, operation)
    named = kind in match.operations or flow in match.flows
    if (match.operations or match.flows) and not named:
        return False
    if match.component_types and component_type not in match.component_types:
        return False
    return match.selector.matches(labels)


def _order(policy: ApprovalPolicy) -> tuple[bool, str]:
    return (policy.metadata.namespace != CLUSTER_NAMESPACE, policy.metadata.name)


def required_approvals(
    policies: Iterable[ApprovalPolicy],
    *,
    operation: str,
    flow: str,
    namespace: str,
    component_type: str,
    labels: Mapping[str, str],
    now: datetime,
) -> Requirement:
    """The gates a flow needs: one per matching policy (cluster-wide ones first, then by
    name), minus those inside their auto-approval window at ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    gates: list[Gate] = []
    auto: list[str] = []
    ordered = sorted(policies, key=_order)
    for policy in ordered:
        if not applies(
            policy,
            operation=operation,
            flow=flow,
            namespace=namespace,
            component_type=component_type,
            labels=labels,
        ):
            continue
        ref = f"{policy.metadata.namespace}/{policy.metadata.name}"
        if policy.spec.approvals is None:
            continue
        window = policy.spec.auto_approve_in
        if window is not None and window.open_at(now):
            auto.append(ref)
            continue
        spec = policy.spec.approvals
        gates.append(
            Gate(
                policy=ref,
                users=tuple(spec.users),
                groups=tuple(spec.groups),
                required=spec.required,
                timeout=parse_duration(spec.timeout),
                default=spec.default,
                message=policy.spec.message,
            )
        )
    return Requirement(tuple(gates), tuple(auto))


@dataclass(frozen=True)
class Hold:
    """Why a flow may not start yet, and until when."""

    until: datetime
    reasons: tuple[str, ...]
    kind: str = "window"
    """``window`` (a window or freeze) or ``rejected`` (a person rejected this change)."""


def start_hold(
    policies: Iterable[ApprovalPolicy],
    *,
    operation: str,
    flow: str,
    namespace: str,
    component_type: str,
    labels: Mapping[str, str],
    now: datetime,
    application: str = "",
) -> Hold | None:
    """When a flow may start under the windows and freezes of the matching policies:
    ``None`` if now, else the earliest time every one of them allows (a window that opens
    inside a freeze is skipped until one opens after it). A policy whose window an
    override lifts for ``application`` (``namespace/name``) holds nothing."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    matching = [
        p
        for p in sorted(policies, key=_order)
        if applies(
            p,
            operation=operation,
            flow=flow,
            namespace=namespace,
            component_type=component_type,
            labels=labels,
        )
        and (p.spec.allowed_in is not None or p.spec.freezes)
        and not (application and p.overridden(application, now))
    ]
    at = now
    reasons: dict[str, str] = {}
    for _ in range(100):
        moved = False
        for policy in matching:
            ref = f"{policy.metadata.namespace}/{policy.metadata.name}"
            for freeze in policy.spec.freezes:
                if freeze.start <= at < freeze.end:
                    why = f": {freeze.reason}" if freeze.reason else ""
                    reasons[ref + "#freeze"] = (
                        f"change freeze of {ref} until {_iso(freeze.end)}{why}"
                    )
                    at, moved = freeze.end, True
            window = policy.spec.allowed_in
            if window is not None and not window.open_at(at):
                at = window.next_open(at)
                reasons[ref + "#window"] = (
                    f"outside the maintenance window of {ref} ({window.schedule} "
                    f"{window.time_zone}, {window.duration})"
                )
                moved = True
        if not moved:
            break
    if at == now:
        return None
    return Hold(at, tuple(reasons.values()))


def sudo_limit(policies: Iterable[ApprovalPolicy], namespace: str) -> float | None:
    """The longest elevation the policies covering ``sudo`` in ``namespace`` allow: the
    shortest of their limits (1h for a policy that sets none); ``None`` when no policy
    covers sudo there, so nobody may approve an elevation and none is granted."""
    limits = [
        parse_duration((p.spec.sudo or SudoLimits()).max_duration)
        for p in policies
        if p.spec.approvals is not None
        and applies(p, operation="sudo", flow="", namespace=namespace, component_type="", labels={})
    ]
    return min(limits) if limits else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
