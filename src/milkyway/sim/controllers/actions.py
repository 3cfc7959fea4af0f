"""What a controller core asks for: intents, applied by the runtime through the cluster API.

Cores never perform I/O; they return a list of these, which keeps them pure and lets the
tests assert on decisions instead of on side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Resource = tuple[str, str, str]
"""(group, version, plural); the core group is the empty string."""

PODS: Resource = ("", "v1", "pods")
NODES: Resource = ("", "v1", "nodes")
EVENTS: Resource = ("", "v1", "events")
SERVICES: Resource = ("", "v1", "services")
ENDPOINTS: Resource = ("", "v1", "endpoints")
PVCS: Resource = ("", "v1", "persistentvolumeclaims")
PVS: Resource = ("", "v1", "persistentvolumes")
NAMESPACES: Resource = ("", "v1", "namespaces")
STATEFULSETS: Resource = ("apps", "v1", "statefulsets")
DEPLOYMENTS: Resource = ("apps", "v1", "deployments")
REPLICASETS: Resource = ("apps", "v1", "replicasets")
CONTROLLER_REVISIONS: Resource = ("apps", "v1", "controllerrevisions")
ENDPOINT_SLICES: Resource = ("discovery.k8s.io", "v1", "endpointslices")
PDBS: Resource = ("policy", "v1", "poddisruptionbudgets")
STORAGE_CLASSES: Resource = ("storage.k8s.io", "v1", "storageclasses")
LEASES: Resource = ("coordination.k8s.io", "v1", "leases")


@dataclass(frozen=True)
class Create:
    resource: Resource
    namespace: str
    obj: dict[str, Any]


@dataclass(frozen=True)
class Patch:
    """A JSON merge patch; ``subresource="status"`` for status writes."""

    resource: Resource
    namespace: str
    name: str
    patch: dict[str, Any]
    subresource: str = ""


@dataclass(frozen=True)
class Delete:
    resource: Resource
    namespace: str
    name: str
    grace_period_seconds: int | None = None
    uid: str = ""
    """Precondition: delete only this incarnation of the object."""


@dataclass(frozen=True)
class Event:
    """A core/v1 Event about ``involved`` (an object reference)."""

    involved: dict[str, Any]
    type: str
    reason: str
    message: str
    source: str = ""


@dataclass(frozen=True)
class Requeue:
    """Look at ``key`` again after ``after`` seconds (time-driven conditions)."""

    after: float
    key: tuple[str, str] = ("", "")


Action = Create | Patch | Delete | Event | Requeue
