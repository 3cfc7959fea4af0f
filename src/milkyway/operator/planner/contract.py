"""What the planner hands the operator: flows to start, reasons, status; and the rules of
the disruption budget both the planner and the flows use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milkyway.model.component_type import DisruptionPolicy
from milkyway.model.resolve import ResolvedComponent
from milkyway.model.zone_policy import whole_zone_safe

REMEDIATE_AFTER = 60.0
"""Seconds a member may stay not Ready before it is recreated (a missing one: at once)."""
REPLACE_ANNOTATION = "milkyway.ebay.com/replace"
RESTART_ANNOTATION = "milkyway.ebay.com/restart"
REMEDIATE_AFTER_ANNOTATION = "milkyway.ebay.com/remediate-after"
PROGRESS_DEADLINE = 600.0
"""Seconds a provision may go without one more member becoming Ready before it fails
with the reason (unschedulable, bad storage class, image that cannot be pulled)."""
PROGRESS_DEADLINE_ANNOTATION = "milkyway.ebay.com/progress-deadline"
RETRY_FAILED_AFTER = 30.0
"""Seconds after a failed run before the planner starts the same flow for it again (the
base of the exponential back-off: doubled after every further failure in a row)."""
RETRY_FAILED_CAP = 3600.0
"""The longest wait between two failed attempts of the same flow."""
REPLACE_GRACE = 600.0
"""Seconds a member's node must stay lost (or its disk failed) before the member is moved
onto a new volume or its pod is rescheduled: longer than Kubernetes' own eviction (300 s),
so a node that comes back finds its members and their data where it left them."""
ANNOUNCE_RECHECK = 1.0
"""Seconds before acting on a lost-member decision that the status does not show yet: the
decision is written first, then acted on."""
RECHECK = 5.0
"""Seconds before looking again at a member its controller is expected to recreate."""
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "Pod")
MEMBER_KINDS = ("Deployment", "Pod", "PersistentVolumeClaim", "PersistentVolume")
"""Kinds a per-member pattern renders once per member (labelled with its identity)."""


@dataclass(frozen=True)
class FlowRequest:
    """A flow to start: ``engine.submit(flow, params, ...)``, holding ``mutex``."""

    flow: str
    params: dict[str, Any]
    component: str | None
    reason: str
    mutex: str
    operation: str = ""
    """The lifecycle operation (``provision``, ``config-update``, …) ``flow`` runs."""
    attempt: int = 1
    """1, or one more than the attempt of the Failed run of the same flow it retries."""


@dataclass(frozen=True)
class RunningFlow:
    """A FlowRun of this Application, as the operator last saw it (any phase)."""

    name: str
    flow: str
    component: str | None
    phase: str
    finished_at: str | None = None
    """RFC 3339 end time of a finished run: a Failed run's flow is started again only
    after the back-off (``retry_at``; unknown: at once)."""
    attempt: int = 1
    """Which attempt in a row of the same flow for the same component this run is."""
    retry_at: str | None = None
    """RFC 3339 time before which a Failed run's flow is not started again: its end plus
    the back-off of its attempt (``backoff_delay``)."""
    message: str = ""
    """Why a finished run ended as it did (a Failed run's reason)."""
    operation: str = ""
    """The lifecycle operation the run performs (its ``milkyway.ebay.com/operation``)."""


@dataclass(frozen=True)
class Plan:
    """What to do now for one Application."""

    start: tuple[FlowRequest, ...]
    """Flows to start now (at most one per component)."""
    waiting: tuple[str, ...]
    """Human-readable reasons nothing else starts."""
    status: dict[str, Any]
    """ApplicationStatus fields (camelCase JSON) to write."""
    requeue_after: float | None
    """Seconds until a time-based rule may fire (a member under the remediation threshold)."""
    deleted: bool = False
    """Deleting, and nothing of the Application is left in any cluster: the finalizer may go."""
    cancel: tuple[str, ...] = ()
    """Runs to cancel now (a provision that a decommission pre-empts)."""


def backoff_delay(
    attempt: int, base: float = RETRY_FAILED_AFTER, cap: float = RETRY_FAILED_CAP
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) of a flow before the
    next: ``base``, doubled after each further failure in a row, at most ``cap``."""
    if attempt < 1:
        return 0.0
    return min(cap, base * 2.0 ** min(attempt - 1, 62))


def mutex_key(namespace: str, application: str, component: str) -> str:
    """The mutex every mutating flow of one component holds (``spec.mutex`` renders it)."""
    return f"milkyway/{namespace}/{application}/{component}"


def max_unavailable(policy: DisruptionPolicy, size: int) -> int:
    """Members of a component that may be down at once, across all its zones.

    A quorum of ``n`` tolerates ``(n-1)//2``; an ensemble of one or two members tolerates
    none, yet must still be restartable, so it is restarted one member at a time."""
    if policy.kind == "quorum":
        return max(1, (size - 1) // 2) if size <= 2 else (size - 1) // 2
    return policy.max_unavailable


def whole_zone(component: ResolvedComponent, down: int = 0) -> bool:
    """A ``zone`` policy takes a whole zone down at once: its configuration makes one zone
    down safe (:func:`~milkyway.model.zone_policy.whole_zone_safe`) and no member is down
    already (one would be in some zone, and another zone must not join it: the component
    falls back to one member at a time until it is back)."""
    policy = component.type.spec.disruption
    return down == 0 and whole_zone_safe(policy, [(z.size, z.params) for z in component.zones])


def component_budget(component: ResolvedComponent, down: int = 0) -> int:
    """Members of ``component`` that may be down at once, ``down`` being down already: the
    largest zone under a ``zone`` policy that takes whole zones, else
    :func:`max_unavailable`."""
    if whole_zone(component, down):
        return max(z.size for z in component.zones)
    return max_unavailable(component.type.spec.disruption, component.size)
