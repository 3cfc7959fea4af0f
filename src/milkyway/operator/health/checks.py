"""Judge what the pods show: findings, per zone and component status, the overall status.

A pure function of the zones' targets, the pods read and the previous report, so every
rule is testable without a cluster. The checks need only what Kubernetes shows:

* ``members``: every expected member has a pod, Ready, on the desired version and config;
* ``quorum``: for a majority-quorum type (ZooKeeper, etcd: disruption kind ``quorum``)
  more than half of all members across every zone Ready, else the component is
  Unhealthy; for a rack-aware type (Kafka) every broker Ready, none Ready is Unhealthy.

What only the data system knows (exactly one ZooKeeper leader and size-1 followers, one
etcd leader, brokers registered, under-replicated partitions) is answered by each
member's agent, which the health check does not read yet: :data:`AGENT_CHECKS` names
those checks so a report can say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from milkyway.kube.labels import CONFIG_HASH, VERSION_LABEL
from milkyway.operator.health.targets import ZoneTarget

AGENT_CHECKS: Mapping[str, tuple[str, ...]] = {
    "quorum": ("one-leader", "followers"),
    "rackAware": ("brokers-registered", "under-replicated-partitions"),
    "zone": ("brokers-registered", "under-replicated-partitions"),
}
"""Data-system checks the member agents answer; the health check does not run them yet."""

SEVERITY = {"Healthy": 0, "Unknown": 1, "Degraded": 2, "Unhealthy": 3}
TRANSITIONS = {
    ("Healthy", "Degraded"): "health-degraded",
    ("Unhealthy", "Degraded"): "health-degraded",
    ("Healthy", "Unhealthy"): "health-unhealthy",
    ("Degraded", "Unhealthy"): "health-unhealthy",
    ("Unknown", "Degraded"): "health-degraded",
    ("Unknown", "Unhealthy"): "health-unhealthy",
    ("Degraded", "Healthy"): "health-recovered",
    ("Unhealthy", "Healthy"): "health-recovered",
}
"""Trigger fired when the overall status changes from one value to another. Unknown (an
Application still being provisioned) to Healthy is no news."""


@dataclass
class ZonePods:
    """What was read of one zone: its pods, or why they could not be read."""

    target: ZoneTarget
    pods: list[Mapping[str, Any]] = field(default_factory=list)
    error: str = ""


def _worst(states: Sequence[str]) -> str:
    return max(states, key=lambda s: SEVERITY[s], default="Healthy")


def pod_problem(pod: Mapping[str, Any]) -> str:
    """Why a pod is not Ready, as a person would say it (``""`` when it is Ready)."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if ready:
        return ""
    restarts = 0
    reasons: list[str] = []
    for container in status.get("containerStatuses") or []:
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                reasons.append(reason)
    phase = status.get("phase") or "Pending"
    what = reasons[0] if reasons else f"{phase}, not Ready"
    return f"{what} (restarts {restarts})" if restarts else what


def _member_of(target: ZoneTarget, pod_name: str) -> str:
    for member in target.members:
        if pod_name == member or pod_name.startswith(member + "-"):
            return member
    return ""


def zone_findings(read: ZonePods, checks: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
    """Findings of one zone (without ``since``) and how many of its members are Ready."""
    target = read.target
    findings: list[dict[str, Any]] = []
    base = {"component": target.component, "zone": target.zone}
    if read.error:
        findings.append(
            {**base, "check": "zone-readable", "severity": "Degraded", "observed": read.error}
        )
        return findings, 0
    pods = sorted(read.pods, key=lambda p: p["metadata"]["name"])
    by_member: dict[str, Mapping[str, Any]] = {}
    for pod in pods:
        member = _member_of(target, pod["metadata"]["name"]) if target.members else ""
        by_member.setdefault(member or pod["metadata"]["name"], pod)
    ready = 0
    for pod in by_member.values():
        problem = pod_problem(pod)
        if not problem:
            ready += 1
        if "members" not in checks:
            continue
        member = pod["metadata"]["name"]
        if problem:
            findings.append(
                {
                    **base,
                    "member": member,
                    "check": "member-ready",
                    "severity": "Degraded",
                    "observed": problem,
                }
            )
            continue
        labels = pod["metadata"].get("labels") or {}
        annotations = pod["metadata"].get("annotations") or {}
        stale = []
        if target.version and labels.get(VERSION_LABEL, target.version) != target.version:
            stale.append(f"version {labels.get(VERSION_LABEL)} (want {target.version})")
        if target.config_hash and annotations.get(CONFIG_HASH, target.config_hash) != (
            target.config_hash
        ):
            stale.append(f"config {annotations.get(CONFIG_HASH)} (want {target.config_hash})")
        if stale:
            findings.append(
                {
                    **base,
                    "member": member,
                    "check": "member-updated",
                    "severity": "Degraded",
                    "observed": ", ".join(stale),
                }
            )
    if "members" in checks:
        for member in target.members:
            if member not in by_member:
                findings.append(
                    {
                        **base,
                        "member": member,
                        "check": "member-missing",
                        "severity": "Degraded",
                        "observed": "no pod",
                    }
                )
        if not target.members and len(by_member) < target.desired:
            findings.append(
                {
                    **base,
                    "check": "member-missing",
                    "severity": "Degraded",
                    "observed": f"{len(by_member)}/{target.desired} pods",
                }
            )
    return findings, ready


def quorum_findings(component: str, zones: Sequence[ZonePods], ready: int) -> list[dict[str, Any]]:
    """The component-level finding of a majority or every-broker type, if any."""
    if not zones:
        return []
    kind = zones[0].target.quorum
    desired = sum(z.target.desired for z in zones)
    if desired == 0:
        return []
    base = {"component": component, "zone": "", "member": ""}
    if kind == "quorum":
        need = desired // 2 + 1
        if ready < need:
            return [
                {
                    **base,
                    "check": "quorum",
                    "severity": "Unhealthy",
                    "observed": f"{ready}/{desired} members Ready across all zones, need {need}",
                }
            ]
    elif kind in ("rackAware", "zone"):
        if ready == 0:
            return [
                {
                    **base,
                    "check": "brokers",
                    "severity": "Unhealthy",
                    "observed": f"0/{desired} brokers Ready",
                }
            ]
        if ready < desired:
            return [
                {
                    **base,
                    "check": "brokers",
                    "severity": "Degraded",
                    "observed": f"{ready}/{desired} brokers Ready",
                }
            ]
    return []


def _key(finding: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(finding.get(k, "") for k in ("component", "zone", "member", "check"))


def evaluate(
    zones: Sequence[ZonePods],
    checks: Sequence[str],
    previous: Mapping[str, Any] | None,
    now: str,
    *,
    history: int = 10,
    run: str = "",
    settling: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """The new ``status.health`` (wire form) and the trigger its change fires, if any.

    ``settling``: the Application is still being provisioned, its members are expected to
    be missing or starting: the findings are listed, the status is Unknown."""
    previous = previous or {}
    findings: list[dict[str, Any]] = []
    components: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[ZonePods]] = {}
    for read in zones:
        grouped.setdefault(read.target.component, []).append(read)
    for component, reads in grouped.items():
        zone_states: dict[str, dict[str, Any]] = {}
        ready_total = 0
        own: list[dict[str, Any]] = []
        for read in reads:
            found, ready = zone_findings(read, checks)
            ready_total += ready
            own.extend(found)
            zone_states[read.target.zone] = {
                "status": _worst([f["severity"] for f in found]),
                "ready": ready,
                "desired": read.target.desired,
            }
        if "quorum" in checks:
            own.extend(quorum_findings(component, reads, ready_total))
        component_state = _worst([f["severity"] for f in own])
        components[component] = {
            "status": component_state,
            "type": reads[0].target.type,
            "zones": zone_states,
        }
        findings.extend(own)
    since_of = {_key(f): f.get("since") for f in previous.get("findings") or []}
    for finding in findings:
        finding.setdefault("member", "")
        finding["since"] = since_of.get(_key(finding)) or now
    state = "Unknown" if settling else _worst([f["severity"] for f in findings])
    before = previous.get("status")
    changed = before is not None and before != state
    trigger = TRANSITIONS.get((before, state)) if before else None
    if before is None and state in ("Degraded", "Unhealthy"):
        trigger = "health-unhealthy" if state == "Unhealthy" else "health-degraded"
    entry = {"checkedAt": now, "status": state, "findings": len(findings)}
    past = [entry, *(previous.get("history") or [])][:history]
    report = {
        "status": state,
        "checkedAt": now,
        "since": now if changed or before is None else previous.get("since", now),
        "run": run,
        "transitions": int(previous.get("transitions") or 0) + (1 if trigger else 0),
        "components": components,
        "findings": findings,
        "history": past,
    }
    return report, trigger
