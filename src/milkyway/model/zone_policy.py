"""The ``zone`` disruption policy: when a whole zone's members may go down at once.

Software that places each partition's replicas across zones (Kafka with ``broker.rack``
set to the zone) and accepts a write once ``min.insync.replicas`` copies have it keeps
every partition writable while one zone is down, provided no zone holds more than
``replicas - minInSync`` copies of a partition. Rack-aware placement puts at most
``ceil(rf / zones)`` copies in one zone, so a whole zone may go when

    rf - ceil(rf / zones) >= minInSync,    rf = min(replicationFactor, members)

with two zones or more. Restarting a zone's members together then costs one wave per
zone instead of one per member. When the condition does not hold (one zone, two zones
with three replicas, a raised ``minInSync``), the policy falls back to one zone at a time
with ``maxUnavailable`` members of it down, as ``rackAware`` does.

A type may only declare the policy if its own configuration makes it safe: it names the
two params (``zoneSafety``) and its defaults and profiles keep ``minInSync`` below the
replication factor; :func:`zone_policy_problems` says why a type is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milkyway.model.component_type import ComponentTypeSpec, DisruptionPolicy

FALLBACK_FIX = "or use disruption kind rackAware (one member of one zone at a time)"


def zone_policy_problems(spec: ComponentTypeSpec) -> list[str]:
    """Why a type may not declare ``disruption.kind: zone`` (empty: it may)."""
    policy = spec.disruption
    if policy.kind != "zone":
        return []
    safety = policy.zone_safety
    if safety is None:
        return [
            "disruption.kind = 'zone' needs disruption.zoneSafety, the integer params that "
            "keep one zone down safe: set zoneSafety: {replicationFactor: PARAM, "
            f"minInSync: PARAM}} {FALLBACK_FIX}"
        ]
    declared = {p.name: p for p in spec.params}
    problems = []
    for field, name in (
        ("replicationFactor", safety.replication_factor),
        ("minInSync", safety.min_in_sync),
    ):
        param = declared.get(name)
        if param is None or param.type != "integer":
            problems.append(
                f"disruption.zoneSafety.{field} = {name!r} is not an integer param of the "
                f"type: declare it in params with type integer {FALLBACK_FIX}"
            )
    if problems:
        return problems
    defaults = {p.name: p.default for p in spec.params if p.default is not None}
    for profile_name, profile in spec.profiles.items():
        params = {**defaults, **profile.params}
        rf = params.get(safety.replication_factor)
        isr = params.get(safety.min_in_sync)
        if not isinstance(rf, int) or not isinstance(isr, int):
            problems.append(
                f"profile {profile_name!r} gives no value to {safety.replication_factor} "
                f"and {safety.min_in_sync}: disruption.kind = 'zone' needs both; give them "
                f"defaults {FALLBACK_FIX}"
            )
        elif isr >= rf:
            problems.append(
                f"profile {profile_name!r} sets {safety.min_in_sync} = {isr}, not below "
                f"{safety.replication_factor} = {rf}: with a zone down no write could "
                f"complete, so disruption.kind = 'zone' is unsafe; lower "
                f"{safety.min_in_sync} below {rf} {FALLBACK_FIX}"
            )
    return problems


def whole_zone_safe(
    policy: DisruptionPolicy, zones: Sequence[tuple[int, Mapping[str, Any]]]
) -> bool:
    """Whether one whole zone of a component may be down at once. ``zones``: each zone's
    size and params (every zone's params must pass: they may differ per zone)."""
    safety = policy.zone_safety
    if policy.kind != "zone" or safety is None:
        return False
    spread = sum(1 for size, _ in zones if size > 0)
    total = sum(size for size, _ in zones)
    if spread < 2:
        return False
    for _, params in zones:
        rf = params.get(safety.replication_factor)
        isr = params.get(safety.min_in_sync)
        if not isinstance(rf, int) or not isinstance(isr, int):
            return False
        copies = min(rf, total)
        if copies - math.ceil(copies / spread) < max(1, isr):
            return False
    return True


def zone_budget(policy: DisruptionPolicy, zones: Sequence[tuple[int, Mapping[str, Any]]]) -> int:
    """Members of a component that may be down at once under a ``zone`` policy: the
    largest zone when a whole zone may go, else ``maxUnavailable`` (of one zone)."""
    if whole_zone_safe(policy, zones):
        return max(size for size, _ in zones)
    return policy.max_unavailable
