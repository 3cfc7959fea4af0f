"""lightkube classes for Milkyway's custom resources on the management cluster.

Generic resources (no generated models): the operator reads them as plain dicts and
validates them with :mod:`milkyway.model`, the one source of truth for their schema.
"""

from __future__ import annotations

from typing import Any

from lightkube.core import resource as res
from lightkube.core.dictmixin import DictMixin
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta

from milkyway.model.base import GROUP, VERSION

APPLICATION = create_namespaced_resource(GROUP, VERSION, "Application", "applications")
CLUSTER = create_global_resource(GROUP, VERSION, "Cluster", "clusters")
COMPONENT_TYPE = create_global_resource(GROUP, VERSION, "ComponentType", "componenttypes")
FLOW = create_namespaced_resource(GROUP, VERSION, "Flow", "flows")
FLOWRUN = create_namespaced_resource(GROUP, VERSION, "FlowRun", "flowruns")
APPROVAL_POLICY = create_namespaced_resource(GROUP, VERSION, "ApprovalPolicy", "approvalpolicies")

__all__ = [
    "APPLICATION",
    "CLUSTER",
    "COMPONENT_TYPE",
    "FLOW",
    "FLOWRUN",
    "FlowRunSummary",
    "as_dict",
    "plain",
]


class _RunSpec(DictMixin):
    flow: str | None = None


class _RunDecision(DictMixin):
    approved: bool | None = None
    by: str | None = None
    reason: str | None = None


class _RunNode(DictMixin):
    phase: str | None = None
    message: str | None = None
    name: str | None = None
    kind: str | None = None
    failures: int | None = None
    decision: _RunDecision | None = None


class _RunStatus(DictMixin):
    phase: str | None = None
    progress: str | None = None
    message: str | None = None
    finishedAt: float | None = None
    nodes: dict[str, _RunNode] | None = None
    timers: dict[str, float] | None = None
    finishedAt: float | None = None


class FlowRunSummary(res.NamespacedResourceG, DictMixin):
    """A FlowRun as the operator's watch reads it: metadata, the flow's name, and the
    status phase, progress, message, finish time, timers and each node's phase, message,
    name, kind, failed attempts and approval decision (what notifications and the
    Application's ApprovalPending condition read).

    A FlowRun carries its flows' snapshot, parameters and every node's attempts (well
    over 100 KB once a provision has run), and the engine rewrites it at every step;
    decoding only these fields skips the rest without building it in memory. Read-only:
    write FlowRuns through :data:`FLOWRUN`.
    """

    _api_info = res.ApiInfo(
        resource=FLOWRUN._api_info.resource,
        plural=FLOWRUN._api_info.plural,
        verbs=["get", "global_list", "global_watch", "list", "watch"],
    )

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ObjectMeta | None = None
    spec: _RunSpec | None = None
    status: _RunStatus | None = None

    def __post_init__(self) -> None:
        self.apiVersion = FLOWRUN._api_info.resource.api_version
        self.kind = "FlowRun"


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object (typed or generic) as the plain JSON dict the API server sent."""
    if isinstance(obj, dict):
        return obj
    data = obj.to_dict()
    if "apiVersion" not in data or "kind" not in data:
        data = {
            "apiVersion": getattr(obj, "apiVersion", None) or _api_version(type(obj)),
            "kind": getattr(obj, "kind", None) or type(obj).__name__,
            **data,
        }
    return data


def plain(obj: Any) -> dict[str, Any]:
    """:func:`as_dict` without ``managedFields``: what caches keep (a third of the bytes
    of a typical object is its field-manager bookkeeping, which Milkyway never reads)."""
    data = as_dict(obj)
    data.get("metadata", {}).pop("managedFields", None)
    return data


def _api_version(resource: type) -> str:
    info = resource._api_info.resource  # type: ignore[attr-defined]
    return f"{info.group}/{info.version}" if info.group else info.version
