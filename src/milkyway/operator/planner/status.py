"""The Application status the planner writes: phase, conditions, per zone counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from milkyway.model.flow import TERMINAL_RUN_PHASES

if TYPE_CHECKING:
    from milkyway.operator.planner.contract import RunningFlow
    from milkyway.operator.planner.rules import PlanningPass


def application_status(planner: PlanningPass) -> dict[str, Any]:
    """``phase``, ``conditions`` and per component per zone counts, from what the planner
    found and decided (a condition keeps its ``lastTransitionTime`` while its status holds)."""
    components: dict[str, Any] = {}
    for name, c in planner.components.items():
        zones: dict[str, dict[str, Any]] = {}
        for z in c.zones:
            obs_members = [m for m in (z.obs.members if z.obs else ()) if m.exists and m.ready]
            versions = {m.version for m in obs_members}
            hashes = {m.config_hash for m in obs_members}
            zone_spec = c.resolved.zone(z.want.zone)
            entry: dict[str, Any] = {
                "desired": z.want.size,
                "ready": z.ready,
                "updated": z.updated,
            }
            if len(versions) == 1:
                only = next(iter(versions))
                entry["version"] = zone_spec.version if only == z.want.version else only
            if len(hashes) == 1 and next(iter(hashes)):
                entry["configHash"] = next(iter(hashes))
            zones[z.want.zone] = entry
        components[name] = {"zones": zones}
    active = [r for r in planner.running if r.phase not in TERMINAL_RUN_PHASES]
    failed = [r for r in planner.running if r.phase == "Failed"]
    unreachable = sorted(
        {
            z.want.cluster
            for c in planner.components.values()
            for z in c.zones
            if z.obs is not None and not z.obs.reachable
        }
    )
    all_ready = all(c.ready for c in planner.components.values())
    down = {
        name: c.down
        for name, c in planner.components.items()
        if c.down and any(z.provisioned for z in c.zones)
    }
    provisioning = any(
        not any(z.provisioned for z in c.zones) for c in planner.components.values()
    ) or any(r.operation == "provision" for r in planner.start)
    progressing = bool(active or planner.start)
    if planner.deleting:
        phase = "Deleting"
    elif all_ready and not progressing:
        phase = "Running"
    elif provisioning and (progressing or planner.waiting):
        phase = "Provisioning"
    elif failed and not progressing:
        phase = "Failed"
    elif progressing:
        phase = "Updating"
    elif down or unreachable:
        phase = "Degraded"
    else:
        phase = "Pending"
    flows = [r.name for r in active] + [f"{r.flow} (starting)" for r in planner.start]
    degraded_reason, degraded_message = "AsExpected", "all members are Ready"
    if unreachable:
        degraded_reason = "ClusterUnreachable"
        degraded_message = f"unreachable: {', '.join(unreachable)}"
    elif down:
        degraded_reason = "MembersUnavailable"
        degraded_message = "; ".join(
            f"{n}: {k} member(s) not Ready" for n, k in sorted(down.items())
        )
    elif failed:
        degraded_reason = "FlowFailed"
        degraded_message = f"failed: {', '.join(r.name for r in failed)}"
    conditions = [
        _condition(
            planner,
            "Ready",
            all_ready and not planner.deleting,
            "AllComponentsReady" if all_ready else "ComponentsNotReady",
            "every member is Ready and up to date"
            if all_ready
            else "not Ready: " + ", ".join(n for n, c in planner.components.items() if not c.ready),
        ),
        _condition(
            planner,
            "Progressing",
            progressing,
            "FlowRunning" if progressing else "Idle",
            ", ".join(flows) if flows else ("; ".join(planner.waiting) or "nothing to do"),
        ),
        _condition(
            planner,
            "Degraded",
            degraded_reason != "AsExpected",
            degraded_reason,
            degraded_message,
        ),
    ]
    conditions.append(_member_lost(planner))
    conditions.append(_flow_failed(planner, failed))
    counts = [z for c in components.values() for z in c["zones"].values()]
    ready_members = f"{sum(z['ready'] for z in counts)}/{sum(z['desired'] for z in counts)}"
    return {
        "phase": phase,
        "conditions": conditions,
        "components": components,
        "readyMembers": ready_members,
        "lostMembers": [entry.to_status() for entry in planner.lost],
        "failedFlows": [_failure(r) for r in failed],
    }


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
