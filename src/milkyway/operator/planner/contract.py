"""What the planner hands the operator: flows to start, reasons, status; and the rules of
the disruption budget both the planner and the flows use."""

from __future__ import annotations

from dataclasses import dataclass

from milkyway.model.component_type import DisruptionPolicy

REMEDIATE_AFTER = 60.0
"""Seconds a member may stay not Ready before it is recreated (a missing one: at once)."""
REPLACE_ANNOTATION = "milkyway.ebay.com/replace"
RESTART_ANNOTATION = "milkyway.ebay.com/restart"
REMEDIATE_AFTER_ANNOTATION = "milkyway.ebay.com/remediate-after"
RETRY_FAILED_AFTER = 30.0
"""Seconds after a failed run before the planner starts the same flow for it again."""
RECHECK = 5.0
"""Seconds before looking again at a member its controller is expected to recreate."""
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "Pod")
MEMBER_KINDS = ("Deployment", "Pod", "PersistentVolumeClaim", "PersistentVolume")
"""Kinds a per-member pattern renders once per member (labelled with its identity)."""


@dataclass(frozen=True)
class FlowRequest:
    """A flow to start: ``engine.submit(flow, params, ...)``, holding ``mutex``."""

    flow: str
    params: dict
    component: str | None
    reason: str
    mutex: str
    operation: str = ""
    """The lifecycle operation (``provision``, ``config-update``, …) ``flow`` runs."""


@dataclass(frozen=True)
class RunningFlow:
    """A FlowRun of this Application, as the operator last saw it (any phase)."""

    name: str
    flow: str
    component: str | None
    phase: str
    finished_at: str | None = None
    """RFC 3339 end time of a finished run: a Failed run's flow is started again only
    ``RETRY_FAILED_AFTER`` seconds later (unknown: at once)."""


@dataclass(frozen=True)
class Plan:
    """What to do now for one Application."""

    start: tuple[FlowRequest, ...]
    """Flows to start now (at most one per component)."""
    waiting: tuple[str, ...]
    """Human-readable reasons nothing else starts."""
    status: dict
    """ApplicationStatus fields (camelCase JSON) to write."""
    requeue_after: float | None
    """Seconds until a time-based rule may fire (a member under the remediation threshold)."""
    deleted: bool = False
    """Deleting, and nothing of the Application is left in any cluster: the finalizer may go."""


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
