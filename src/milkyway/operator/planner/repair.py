"""The planner's rules for repairing a component: replacing members on a lost node or
failed disk (and members the replace annotation names), and recreating members missing
or not Ready for longer than the remediation delay."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from milkyway.operator.observe import MemberObservation, pinned_node
from milkyway.operator.planner.contract import ANNOUNCE_RECHECK, RECHECK
from milkyway.operator.planner.desired import MemberWant
from milkyway.operator.planner.diff import ZoneDiff
from milkyway.operator.planner.lost import (
    NO_ACTION,
    REPLACE_VOLUME,
    RESCHEDULE,
    Replacement,
    announced,
    data_floor,
    decide,
    holds_data,
    replacement_policy,
)
from milkyway.operator.planner.status import parse_time

if TYPE_CHECKING:
    from milkyway.operator.planner.rules import ComponentDiff, PlanningPass


def replace_members(planner: PlanningPass, c: ComponentDiff) -> bool:
    """Replace members on a lost node or failed disk (see :mod:`.lost`: after the grace
    period, announced first, within the data floor, behind an approval if the policy
    says so) and members named in the replace annotation."""
    policy = replacement_policy(planner.app, c.resolved.type)
    targets: list[tuple[ZoneDiff, MemberObservation, str, dict[str, Any]]] = []
    lost_volumes = lost_members(planner, c, policy, targets)
    for zone in c.zones:
        if zone.want.workload == "deployment":
            continue
        for member in (m for m in (zone.obs.members if zone.obs else ()) if m.exists):
            requested = planner.replace_requests.get(member.name)
            if (
                requested is not None
                and not planner.not_yet(requested)
                and (member.created or "") < requested
                and all(t[1].name != member.name for t in targets)
                and all(e.member != member.name for e in planner.lost)
            ):
                extra = {"action": REPLACE_VOLUME, "restartBefore": requested}
                targets.append((zone, member, "requested", extra))
    if not targets:
        return False
    items = [
        {**planner.member_item(z, m.name, m.ordinal, m.member_id), **extra}
        for z, m, _, extra in targets
    ]
    targets_down = sum(1 for _, m, _, _ in targets if not m.ready or m.deleting)
    if targets_down < len(targets) and c.budget - (c.down - targets_down) < 1:
        planner.waiting.append(
            f"{c.name}: {c.down} member(s) down, the disruption policy allows {c.budget}; "
            "replacing a healthy member waits"
        )
        return False
    why = ", ".join(f"{m.name} ({reason})" for _, m, reason, _ in targets)
    approval = policy.require_approval and lost_volumes
    planner.request(
        c,
        "replace-member",
        f"replace {why}" + ("; waits for approval" if approval else ""),
        approval=approval,
        approvers={
            "users": list(policy.approvers.users),
            "groups": list(policy.approvers.groups),
        },
        **planner.roll_params(c, items, targets_down),
    )
    return True


def lost_members(
    planner: PlanningPass,
    c: ComponentDiff,
    policy: Replacement,
    targets: list[tuple[ZoneDiff, MemberObservation, str, dict[str, Any]]],
) -> bool:
    """Decide about every member of ``c`` on a lost node or failed disk; add those
    whose time has come to ``targets``. True if one of them loses its volume."""
    previous = {e.member: e.model_dump(by_alias=True) for e in planner.app.status.lost_members}
    written = list(previous.values())
    holders = sum(1 for z in c.zones for m in z.seen if holds_data(m))
    floor = data_floor(c.resolved.type.spec.disruption, c.size)
    any_volume = False
    for zone in c.zones:
        if zone.want.workload == "deployment":
            continue
        for member in zone.broken:
            if _alert_only(policy, member):
                planner.waiting.append(
                    f"{c.name}: {member.name}: disk {member.disk_alert} (agent); "
                    "replacement.onCriticalDisk is alert, so it is not replaced"
                )
                continue
            entry = decide(
                c.name,
                zone.want.zone,
                zone.want.workload,
                member,
                _wanted_node(zone, member),
                policy.grace,
                previous.get(member.name),
                planner.now,
            )
            due = parse_time(entry.at) or planner.now
            note = ""
            if entry.action == NO_ACTION:
                pass
            elif due > planner.now:
                planner.later((due - planner.now).total_seconds())
            elif not announced(entry, written):
                planner.later(ANNOUNCE_RECHECK)
            elif entry.action == REPLACE_VOLUME:
                if policy.require_approval and not (
                    policy.approvers.users or policy.approvers.groups
                ):
                    note = (
                        "replacement.requireApproval is set but no approvers are named; "
                        "set spec.replacement.approvers (users or groups)"
                    )
                elif holds_data(member) and holders - 1 < floor:
                    note = (
                        f"replacing it would leave {holders - 1} of {c.size} members "
                        f"holding data; the disruption policy needs {floor}"
                    )
                else:
                    holders -= 1 if holds_data(member) else 0
                    any_volume = True
                    extra: dict[str, Any] = {"action": REPLACE_VOLUME, "lostNode": entry.node}
                    if member.volume_ok and member.node_ok and member.disk_alert:
                        extra["diskAlert"] = True
                    targets.append((zone, member, entry.reason, extra))
            else:
                extra = {"action": RESCHEDULE, "lostNode": entry.node}
                targets.append((zone, member, entry.reason, extra))
            if note:
                entry = dataclasses.replace(entry, note=note)
            planner.lost.append(entry)
            if all(t[1].name != member.name for t in targets):
                planner.waiting.append(f"{c.name}: {entry.sentence()}")
    return any_volume


def remediate(planner: PlanningPass, c: ComponentDiff) -> bool:
    overdue: list[tuple[ZoneDiff, Any]] = []
    for zone in c.zones:
        if not zone.provisioned:
            continue
        policy = replacement_policy(planner.app, c.resolved.type)
        lost = {m.name for m in zone.broken if not _alert_only(policy, m)}
        for member in zone.down:
            if member.name in lost:
                continue
            if isinstance(member, MemberWant) and member.ordinal is None:
                planner.later(RECHECK)
                planner.waiting.append(f"{c.name}: {zone.want.zone} waits for its controller")
                continue
            if isinstance(member, MemberWant) or not member.exists:
                overdue.append((zone, member))
                continue
            since = _since(member)
            waited = (planner.now - since).total_seconds() if since else math.inf
            if waited >= planner.remediate_after:
                overdue.append((zone, member))
            else:
                planner.later(planner.remediate_after - waited)
                planner.waiting.append(
                    f"{c.name}: {member.name} not Ready for {waited:.0f}s "
                    f"(remediation after {planner.remediate_after:g}s)"
                )
    if not overdue:
        return False
    items = [
        planner.member_item(z, m.name, m.ordinal, m.member_id)
        for z, m in overdue
        if z.want.workload != "deployment"
    ]
    names = ", ".join(m.name for _, m in overdue)
    planner.request(
        c,
        "remediate",
        f"recreate {names}: missing or not Ready for over {planner.remediate_after:g}s",
        zones=[z.want.entry() for z in c.zones if z.provisioned],
        **planner.roll_params(c, items, len(items)),
    )
    return True


def _wanted_node(zone: ZoneDiff, member: MemberObservation) -> str | None:
    """The node the spec pins ``member`` to (the ``pods`` pattern's local volume)."""
    for want in zone.want.members:
        if want.member_id == member.member_id and member.member_id is not None:
            for obj in want.manifests:
                if obj.get("kind") == "PersistentVolume":
                    return pinned_node(obj)
    return None


def _since(member: MemberObservation) -> datetime | None:
    return parse_time(member.not_ready_since)


def _alert_only(policy: Replacement, member: MemberObservation) -> bool:
    """The member is broken only by its agent's disk alert, and the policy says to alert."""
    return (
        member.volume_ok
        and member.node_ok
        and member.disk_alert is not None
        and policy.on_critical_disk == "alert"
    )
