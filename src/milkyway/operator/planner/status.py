"""The Application status the planner writes: phase, conditions, per zone counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from milkyway.model.flow import TERMINAL_RUN_PHASES

if TYPE_CHECKING:
    from milkyway.operator.planner.contract import RunningFlow
    from milkyway.operator.planner.diff import ZoneDiff
    from milkyway.operator.planner.rules import ComponentDiff, PlanningPass


def application_status(planner: PlanningPass) -> dict[str, Any]:
    """``phase``, ``conditions`` and per component per zone counts, from what the planner
    found and decided (a condition keeps its ``lastTransitionTime`` while its status holds)."""
    components = {
        name: {"zones": {z.want.zone: _zone_counts(c, z) for z in c.zones}}
        for name, c in planner.components.items()
    }
    facts = _Facts.of(planner)
    counts = [z for c in components.values() for z in c["zones"].values()]
    ready_members = f"{sum(z['ready'] for z in counts)}/{sum(z['desired'] for z in counts)}"
    return {
        "phase": _phase(planner, facts),
        "conditions": [
            _ready(planner, facts),
            _progressing(planner, facts),
            _degraded(planner, facts),
            _member_lost(planner),
            _flow_failed(planner, facts.failed),
        ],
        "components": components,
        "readyMembers": ready_members,
        "lostMembers": [entry.to_status() for entry in planner.lost],
        "failedFlows": [_failure(r) for r in facts.failed],
    }


def _zone_counts(c: ComponentDiff, z: ZoneDiff) -> dict[str, Any]:
    """One zone's ``desired``, ``ready`` and ``updated`` members, and the version and
    configuration hash its Ready members share (when they share one)."""
    obs_members = [m for m in (z.obs.members if z.obs else ()) if m.exists and m.ready]
    versions = {m.version for m in obs_members}
    hashes = {m.config_hash for m in obs_members}
    entry: dict[str, Any] = {"desired": z.want.size, "ready": z.ready, "updated": z.updated}
    if len(versions) == 1:
        only = next(iter(versions))
        entry["version"] = c.resolved.zone(z.want.zone).version if only == z.want.version else only
    if len(hashes) == 1 and next(iter(hashes)):
        entry["configHash"] = next(iter(hashes))
    pods = sorted((m for m in (z.obs.members if z.obs else ()) if m.exists), key=lambda m: m.name)
    entry["pods"] = [
        {
            "name": m.name,
            "ready": m.ready,
            **({"node": m.node} if m.node else {}),
            **({"version": m.version} if m.version else {}),
        }
        for m in pods
    ]
    return entry


@dataclass(frozen=True)
class _Facts:
    """What the phase and the conditions are decided from."""

    active: list[RunningFlow]
    failed: list[RunningFlow]
    unreachable: list[str]
    """Member clusters of the Application that do not answer."""
    all_ready: bool
    down: dict[str, int]
    """Components with members not Ready, once provisioned: how many."""
    provisioning: bool
    """Some component has no zone provisioned yet, or a provision starts now."""
    progressing: bool
    """A flow runs or starts now."""

    @classmethod
    def of(cls, planner: PlanningPass) -> _Facts:
        active = [r for r in planner.running if r.phase not in TERMINAL_RUN_PHASES]
        components = planner.components.values()
        return cls(
            active=active,
            failed=[r for r in planner.running if r.phase == "Failed"],
            unreachable=sorted(
                {
                    z.want.cluster
                    for c in components
                    for z in c.zones
                    if z.obs is not None and not z.obs.reachable
                }
            ),
            all_ready=all(c.ready for c in components),
            down={
                name: c.down
                for name, c in planner.components.items()
                if c.down and any(z.provisioned for z in c.zones)
            },
            provisioning=any(not any(z.provisioned for z in c.zones) for c in components)
            or any(r.operation == "provision" for r in planner.start),
            progressing=bool(active or planner.start),
        )


def _phase(planner: PlanningPass, facts: _Facts) -> str:
    if planner.deleting:
        return "Deleting"
    if facts.all_ready and not facts.progressing:
        return "Running"
    if facts.provisioning and (facts.progressing or planner.waiting):
        return "Provisioning"
    if facts.failed and not facts.progressing:
        return "Failed"
    if facts.progressing:
        return "Updating"
    if facts.down or facts.unreachable:
        return "Degraded"
    return "Pending"


def _ready(planner: PlanningPass, facts: _Facts) -> dict[str, Any]:
    if facts.all_ready:
        reason, message = "AllComponentsReady", "every member is Ready and up to date"
    else:
        not_ready = ", ".join(n for n, c in planner.components.items() if not c.ready)
        reason, message = "ComponentsNotReady", f"not Ready: {not_ready}"
    return _condition(planner, "Ready", facts.all_ready and not planner.deleting, reason, message)


def _progressing(planner: PlanningPass, facts: _Facts) -> dict[str, Any]:
    flows = [r.name for r in facts.active] + [f"{r.flow} (starting)" for r in planner.start]
    return _condition(
        planner,
        "Progressing",
        facts.progressing,
        "FlowRunning" if facts.progressing else "Idle",
        ", ".join(flows) if flows else ("; ".join(planner.waiting) or "nothing to do"),
    )


def _degraded(planner: PlanningPass, facts: _Facts) -> dict[str, Any]:
    """``Degraded``, for the first of: unreachable clusters, members not Ready, failed
    flows."""
    if facts.unreachable:
        reason, message = "ClusterUnreachable", f"unreachable: {', '.join(facts.unreachable)}"
    elif facts.down:
        reason = "MembersUnavailable"
        message = "; ".join(f"{n}: {k} member(s) not Ready" for n, k in sorted(facts.down.items()))
    elif facts.failed:
        reason, message = "FlowFailed", f"failed: {', '.join(r.name for r in facts.failed)}"
    else:
        return _condition(planner, "Degraded", False, "AsExpected", "all members are Ready")
    return _condition(planner, "Degraded", True, reason, message)


def _member_lost(planner: PlanningPass) -> dict[str, Any]:
    """``MemberLost``: every member on a lost node or failed disk and the decision about
    it, written before the decision is acted on."""
    if not planner.lost:
        return _condition(planner, "MemberLost", False, "NoMemberLost", "no member is lost")
    message = "; ".join(entry.sentence() for entry in planner.lost)
    return _condition(planner, "MemberLost", True, "MemberLost", message)


def _flow_failed(planner: PlanningPass, failed: list[RunningFlow]) -> dict[str, Any]:
    """``FlowFailed``: the last run of a component's flow failed; why, and when the next
    attempt comes (the back-off doubles after each failure in a row)."""
    if not failed:
        return _condition(planner, "FlowFailed", False, "NoFailure", "no flow failed")
    parts = []
    for run in failed:
        target = f"{run.component}: " if run.component else ""
        retry = f"; next attempt at {run.retry_at}" if run.retry_at else ""
        parts.append(
            f"{target}{run.name} ({run.flow}) failed (attempt {run.attempt}): "
            f"{run.message or 'no reason given'}{retry}"
        )
    return _condition(planner, "FlowFailed", True, "FlowFailed", "; ".join(parts))


def _failure(run: RunningFlow) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "component": run.component,
        "flow": run.flow,
        "run": run.name,
        "attempt": run.attempt,
        "message": run.message,
    }
    if run.finished_at:
        entry["finishedAt"] = run.finished_at
    if run.retry_at:
        entry["retryAt"] = run.retry_at
    return entry


def _condition(
    planner: PlanningPass, kind: str, value: bool, reason: str, message: str
) -> dict[str, Any]:
    status = "True" if value else "False"
    previous = next((c for c in planner.app.status.conditions if c.type == kind), None)
    at = rfc3339(planner.now)
    if previous is not None and previous.status == status and previous.last_transition_time:
        at = previous.last_transition_time
    result: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
    }
    if planner.app.metadata.generation is not None:
        result["observedGeneration"] = planner.app.metadata.generation
    return result


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as the status writes it (``None`` when absent or malformed)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
