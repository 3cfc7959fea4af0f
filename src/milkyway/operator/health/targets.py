"""Where each zone of an Application runs and what it should run, for the health checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milkyway.operator.planner.desired import zone_want


@dataclass(frozen=True)
class ZoneTarget:
    """One component in one zone, as the health checks read it."""

    component: str
    type: str
    quorum: str
    """The type's disruption kind: ``quorum`` (majority systems), ``rackAware``, …"""
    zone: str
    cluster: str
    namespace: str
    selector: dict[str, str]
    desired: int
    version: str
    config_hash: str
    members: tuple[str, ...]
    """Names the members' pods start with (the pod name, or the member Deployment's)."""
    workload: str


def zone_targets(wisb: Any) -> list[ZoneTarget]:
    """Every zone of a resolved, placed and rendered Application (a reconciler ``Wisb``)."""
    resolved = wisb.resolved
    found: list[ZoneTarget] = []
    for name in resolved.order:
        component = resolved.components[name]
        for zone in component.zones:
            want = zone_want(
                resolved, component, zone.name, wisb.desired.get((name, zone.name), []), {}
            )
            found.append(
                ZoneTarget(
                    component=name,
                    type=component.type.name,
                    quorum=component.type.spec.disruption.kind,
                    zone=zone.name,
                    cluster=wisb.placement.clusters.get(zone.name, ""),
                    namespace=want.namespace,
                    selector=dict(want.selector),
                    desired=want.size,
                    version=want.version or "",
                    config_hash=want.pod_hash or "",
                    members=tuple(m.name for m in want.members),
                    workload=want.workload,
                )
            )
    return found
