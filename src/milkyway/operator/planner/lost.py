"""Members whose node is lost or whose disk failed: what to do about each, and when.

A node that stops answering usually comes back (a reboot, a network blip, a kubelet
restart). Deleting a member's volume because its node was briefly NotReady destroys the
data the member exists to keep, so the decision is slow and explained:

* nothing happens before the **grace period** (``replacement.gracePeriodSeconds``,
  default 600 s, longer than Kubernetes' own eviction) has passed since the node stopped
  being Ready (or the member stopped being Ready on a failed disk);
* a member whose data is on a **local volume pinned to the lost node** (or whose disk
  failed) is then moved onto a new, empty volume (``replace-volume``); one whose volume is
  network-attached (or who has none) keeps it: only its pod is deleted, so that its
  controller starts it on another node with the same claim (``reschedule``);
* a ``pods``-pattern member pinned by the spec to the lost node cannot move until the
  spec names another node (``none``);
* replacements never leave fewer members holding data than the type's disruption policy
  needs (a quorum: a majority of the component), and wait for an approval when the policy
  says so;
* every decision is written to the Application's status (``lostMembers`` and the
  ``MemberLost`` condition) before anything is deleted.

A member whose agent reports a volume critical or failed (the pod's DiskAlert condition)
is treated like a failed disk, from the time the volume reached that level: after the
grace period it is moved onto a new volume, unless ``replacement.onCriticalDisk`` (the
Application's, else the type's, else the type's ``agent.onCriticalDisk``) is ``alert``.
Its data still counts as held (the full volume is intact) for the data floor.

Pure: the planner hands in observations, the policy and the previous status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from milkyway.model.application import Application, Approvers, ReplacementPolicy
from milkyway.model.component_type import ComponentType, DisruptionPolicy
from milkyway.operator.observe import MemberObservation
from milkyway.operator.planner.contract import REPLACE_GRACE
from milkyway.operator.planner.status import rfc3339

REPLACE_VOLUME = "replace-volume"
RESCHEDULE = "reschedule"
NO_ACTION = "none"


@dataclass(frozen=True)
class Replacement:
    """The replacement policy in force for one component (Application over type over
    the defaults)."""

    grace: float
    require_approval: bool
    approvers: Approvers
    on_critical_disk: str = "replace"
    """``replace`` or ``alert``: what an agent's critical-disk report leads to."""


def replacement_policy(app: Application, component_type: ComponentType) -> Replacement:
    """The Application's ``spec.replacement`` fields where set, else the type's, else
    the defaults (600 s grace, no approval)."""
    layers: list[ReplacementPolicy] = [
        p for p in (app.spec.replacement, component_type.spec.replacement) if p is not None
    ]
    grace = next(
        (p.grace_period_seconds for p in layers if p.grace_period_seconds is not None),
        REPLACE_GRACE,
    )
    approval = next((p.require_approval for p in layers if p.require_approval is not None), False)
    approvers = next((p.approvers for p in layers if p.approvers is not None), Approvers())
    on_disk = next(
        (p.on_critical_disk for p in layers if p.on_critical_disk is not None),
        component_type.spec.agent.on_critical_disk,
    )
    return Replacement(float(grace), bool(approval), approvers, on_disk)


def data_floor(policy: DisruptionPolicy, size: int) -> int:
    """Members of a component that must hold data at every moment: a quorum keeps a
    majority; other kinds lose at most ``maxUnavailable`` members' data at once."""
    if policy.kind == "quorum":
        return size // 2 + 1
    return max(0, size - policy.max_unavailable)


def holds_data(member: MemberObservation) -> bool:
    """The member's data exists: it has a claim whose volume has not failed and that is
    not a fresh, empty one its member has yet to fill (a lost node's volume still holds
    its data: it is merely out of reach)."""
    return member.claim_uid is not None and member.volume_ok and not member.fresh_volume


@dataclass(frozen=True)
class LostMember:
    """One member on a lost node or failed disk, and the decision about it."""

    component: str
    zone: str
    member: str
    node: str
    reason: str
    since: str
    action: str
    at: str
    """RFC 3339 time the action is due (the end of the grace period)."""
    note: str = ""
    """Why the action waits beyond its time, if it does."""

    def sentence(self) -> str:
        what = {
            REPLACE_VOLUME: "will replace its volume with a new, empty one",
            RESCHEDULE: "will reschedule its pod (its network-attached volume is kept)",
            NO_ACTION: "cannot move it",
        }[self.action]
        where = f" on node {self.node}" if self.node else ""
        text = f"{self.member}{where}: {self.reason} since {self.since}; {what}"
        if self.action != NO_ACTION:
            text += f" at {self.at} unless it recovers"
        return f"{text} ({self.note})" if self.note else text

    def to_status(self) -> dict[str, Any]:
        entry = {
            "component": self.component,
            "zone": self.zone,
            "member": self.member,
            "node": self.node,
            "reason": self.reason,
            "since": self.since,
            "action": self.action,
            "at": self.at,
        }
        if self.note:
            entry["note"] = self.note
        return entry


def decide(
    component: str,
    zone: str,
    workload: str,
    member: MemberObservation,
    wanted_node: str | None,
    grace: float,
    previous: dict[str, Any] | None,
    now: datetime,
) -> LostMember:
    """The decision for one broken member. ``wanted_node``: the node the spec pins the
    member to (``pods`` pattern), ``previous``: its entry in the last written status (to
    keep ``since`` when the cluster no longer tells it, e.g. a deleted Node)."""
    if not member.volume_ok:
        reason = "disk failed"
        since_text = member.not_ready_since
        action = REPLACE_VOLUME
    elif member.node_ok and member.disk_alert:
        reason = f"disk {member.disk_alert} (agent)"
        since_text = member.disk_alert_since
        action = REPLACE_VOLUME
    else:
        reason = f"node {member.lost_node} lost"
        since_text = member.lost_since
        pinned = member.volume_node is not None and member.volume_node == member.lost_node
        action = REPLACE_VOLUME if pinned else RESCHEDULE
        if pinned and workload == "pods" and wanted_node == member.lost_node:
            action = NO_ACTION
    if previous is not None and previous.get("reason") == reason:
        since_text = previous.get("since") or since_text
    since = _parse(since_text) or now
    at = since + timedelta(seconds=grace)
    note = ""
    if action == NO_ACTION:
        note = (
            f"the spec pins it to node {member.lost_node}: name another node in the zone's "
            "nodes to move it onto a new volume there"
        )
    return LostMember(
        component=component,
        zone=zone,
        member=member.name,
        node=member.lost_node or "",
        reason=reason,
        since=rfc3339(since),
        action=action,
        at=rfc3339(at),
        note=note,
    )


def announced(entry: LostMember, status_entries: list[dict[str, Any]]) -> bool:
    """The last written status already shows this decision (same member, action, time)."""
    return any(
        e.get("member") == entry.member
        and e.get("action") == entry.action
        and e.get("at") == entry.at
        for e in status_entries
    )


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


__all__ = [
    "NO_ACTION",
    "REPLACE_VOLUME",
    "RESCHEDULE",
    "LostMember",
    "Replacement",
    "announced",
    "data_floor",
    "decide",
    "holds_data",
    "replacement_policy",
]
