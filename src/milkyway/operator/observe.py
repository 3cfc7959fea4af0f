"""WIRI ("what it really is"): one component in one zone, read from live objects.

Pure: the caller (the operator's informers) hands over the live objects of a member
cluster and gets back plain data the planner can diff against the rendered WISB. Nothing
here talks to a cluster, so the planner and its property tests never need one.

A *member* is one process of the component: a pod of the zone's StatefulSet, a pod of its
Deployment, the pod of a per-member Deployment (``deploymentset``) or a bare Pod
(``pods``). Members the workload asks for but whose pod does not exist are reported too
(``exists=False``), so a deleted pod is visible as a missing member rather than as
nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.kube.labels import CONFIG_HASH, MEMBER

VERSION_LABEL = "app.kubernetes.io/version"
FRESH_VOLUME = "milkyway.ebay.com/fresh-volume"
"""Annotation a replacement puts on the empty claim it created, removed once its member
is Ready on it (then the member has caught up from the others and holds data again)."""
_ORDINAL = re.compile(r"-(\d+)$")

ObjectKey = tuple[str, str, str]
"""``(apiVersion/kind, namespace, name)``, e.g. ``("apps/v1/StatefulSet", "ns", "x")``;
the namespace of a cluster-scoped object is ``""``."""


@dataclass(frozen=True)
class MemberObservation:
    """One member of one component in one zone, as the member cluster reports it."""

    component: str
    zone: str
    cluster: str
    member_id: int | None
    """The ``milkyway.ebay.com/member`` label (per-member patterns); ``None`` otherwise."""
    name: str
    """Pod name (or the member's Deployment name when its pod is missing)."""
    exists: bool
    ready: bool
    phase: str | None
    deleting: bool
    node: str | None
    version: str | None
    """The pod's ``app.kubernetes.io/version`` label (a label value, as rendered)."""
    config_hash: str | None
    """The pod's ``milkyway.ebay.com/config-hash`` annotation: the restart hash it runs."""
    restarts: int
    not_ready_since: str | None
    """RFC 3339 time the member stopped being Ready (or was created, if it never was)."""
    volume_ok: bool
    """The data claim is not ``Lost`` and its volume is not ``Failed``."""
    ordinal: int | None = None
    """StatefulSet ordinal (``statefulset`` pattern)."""
    node_ok: bool = True
    """False when the member's node (or the node its local volume is pinned to) is known
    to be NotReady or gone."""
    created: str | None = None
    """RFC 3339 creation time of the pod."""
    uid: str | None = None
    lost_node: str | None = None
    """The node the member depends on (its pod's node or, unscheduled, the node its local
    volume is pinned to) when that node is NotReady or gone."""
    lost_since: str | None = None
    """RFC 3339 time ``lost_node`` stopped being Ready (its Ready condition's last
    transition); ``None`` when unknown (the Node object is gone)."""
    volume_node: str | None = None
    """The node the member's data volume is pinned to (a local PersistentVolume); ``None``
    for a network-attached volume or no claim: such a member can run on any node."""
    claim_uid: str | None = None
    """UID of the member's data claim; ``None`` without a claim."""
    fresh_volume: bool = False
    """The claim was created empty by a replacement and its member has not been Ready on
    it yet: the member holds no data."""
    disk_alert: str | None = None
    """``critical`` or ``failed`` when the pod's DiskAlert condition (written from its
    agent's report) says a volume is at that level; ``None`` otherwise."""
    disk_alert_since: str | None = None
    """RFC 3339 time the volume reached that level."""


@dataclass(frozen=True)
class ZoneObservation:
    """Everything live of one component in one zone (one member cluster)."""

    component: str
    zone: str
    cluster: str
    reachable: bool
    objects: Mapping[ObjectKey, dict[str, Any]]
    members: tuple[MemberObservation, ...]

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict | None:
        return self.objects.get((f"{api_version}/{kind}", namespace, name))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Live objects of ``kind`` (any apiVersion), sorted by name."""
        found = [obj for key, obj in self.objects.items() if key[0].rsplit("/", 1)[-1] == kind]
        return sorted(found, key=lambda o: o["metadata"]["name"])

    @property
    def ready_count(self) -> int:
        return sum(1 for m in self.members if m.exists and m.ready and not m.deleting)


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (
        f"{obj.get('apiVersion', '')}/{obj.get('kind', '')}",
        metadata.get("namespace") or "",
        metadata.get("name", ""),
    )


def observe_zone(
    component: str,
    zone: str,
    cluster: str,
    objects: Iterable[dict[str, Any]],
    *,
    reachable: bool = True,
) -> ZoneObservation:
    """The observation of ``component`` in ``zone`` served by ``cluster``.

    ``objects``: every live object of that cluster labelled for this application,
    component and zone (the renderer puts ``milkyway.ebay.com/{application,component,zone}``
    on everything it renders), **plus** the ``v1/Node`` objects the pods run on and the
    ``v1/PersistentVolume`` objects their claims are bound to. Without Nodes and PVs the
    member's ``node_ok``/``volume_ok`` cannot see a dead node or failed disk and stay True.

    ``reachable=False`` marks a cluster the operator cannot reach; ``objects`` is then the
    last known state (possibly empty) and the planner will not act on it.
    """
    by_key: dict[ObjectKey, dict[str, Any]] = {}
    for obj in objects:
        by_key[object_key(obj)] = obj
    view = _View(by_key)
    members: list[MemberObservation] = []
    seen_pods: set[str] = set()
    for sts in view.kind("StatefulSet"):
        members.extend(_statefulset_members(view, component, zone, cluster, sts, seen_pods))
    for deployment in view.kind("Deployment"):
        members.extend(_deployment_members(view, component, zone, cluster, deployment, seen_pods))
    for pod in view.kind("Pod"):
        name = pod["metadata"]["name"]
        if name not in seen_pods:
            members.append(_member(view, component, zone, cluster, pod, None, None))
    members.sort(
        key=lambda m: (m.ordinal if m.ordinal is not None else -1, m.member_id or -1, m.name)
    )
    return ZoneObservation(
        component=component,
        zone=zone,
        cluster=cluster,
        reachable=reachable,
        objects=MappingProxyType(by_key),
        members=tuple(members),
    )


class _View:
    def __init__(self, objects: Mapping[ObjectKey, dict[str, Any]]) -> None:
        self.objects = objects
        self._by_kind: dict[str, list[dict[str, Any]]] = {}
        for key, obj in objects.items():
            self._by_kind.setdefault(key[0].rsplit("/", 1)[-1], []).append(obj)
        for items in self._by_kind.values():
            items.sort(key=lambda o: o["metadata"]["name"])

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return self._by_kind.get(kind, [])

    def named(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in self.kind(kind):
            metadata = obj["metadata"]
            if metadata["name"] == name and (
                namespace is None or (metadata.get("namespace") or "") == namespace
            ):
                return obj
        return None


def _owned_by(pod: Mapping[str, Any], kind: str, name: str) -> bool:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("name") == name:
            return True
    return False


def _pods_of_replicasets(view: _View, deployment: str) -> list[dict[str, Any]]:
    sets = {
        rs["metadata"]["name"]
        for rs in view.kind("ReplicaSet")
        if _owned_by(rs, "Deployment", deployment)
    }
    return [
        pod
        for pod in view.kind("Pod")
        if any(_owned_by(pod, "ReplicaSet", rs) for rs in sets)
        or (not sets and pod["metadata"]["name"].startswith(f"{deployment}-"))
    ]


def _preferred(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """Of several pods of one member (old one terminating, new one starting), the live one."""
    return sorted(pods, key=lambda p: (_deleting(p), p["metadata"].get("creationTimestamp") or ""))[
        0
    ]


def _statefulset_members(
    view: _View,
    component: str,
    zone: str,
    cluster: str,
    sts: dict[str, Any],
    seen: set[str],
) -> list[MemberObservation]:
    name = sts["metadata"]["name"]
    namespace = sts["metadata"].get("namespace")
    replicas = int((sts.get("spec") or {}).get("replicas") or 0)
    by_ordinal: dict[int, list[dict[str, Any]]] = {}
    for pod in view.kind("Pod"):
        pod_name = pod["metadata"]["name"]
        match = _ORDINAL.search(pod_name)
        if match and pod_name == f"{name}-{match.group(1)}":
            by_ordinal.setdefault(int(match.group(1)), []).append(pod)
    members: list[MemberObservation] = []
    for ordinal in sorted(set(range(replicas)) | set(by_ordinal)):
        pods = by_ordinal.get(ordinal)
        claim = view.named("PersistentVolumeClaim", f"data-{name}-{ordinal}", namespace)
        if pods:
            pod = _preferred(pods)
            seen.update(p["metadata"]["name"] for p in pods)
            members.append(_member(view, component, zone, cluster, pod, ordinal, claim))
        else:
            members.append(
                _absent(view, component, zone, cluster, f"{name}-{ordinal}", None, ordinal, claim)
            )
    return members


def _deployment_members(
    view: _View,
    component: str,
    zone: str,
    cluster: str,
    deployment: dict[str, Any],
    seen: set[str],
) -> list[MemberObservation]:
    name = deployment["metadata"]["name"]
    namespace = deployment["metadata"].get("namespace")
    labels = deployment["metadata"].get("labels") or {}
    pods = [p for p in _pods_of_replicasets(view, name) if p["metadata"]["name"] not in seen]
    seen.update(p["metadata"]["name"] for p in pods)
    if MEMBER in labels:
        member_id = _int(labels.get(MEMBER))
        claim = view.named("PersistentVolumeClaim", f"{name}-data", namespace)
        if pods:
            return [_member(view, component, zone, cluster, _preferred(pods), None, claim)]
        return [_absent(view, component, zone, cluster, name, member_id, None, claim)]
    return [_member(view, component, zone, cluster, pod, None, None) for pod in pods]


def _absent(
    view: _View,
    component: str,
    zone: str,
    cluster: str,
    name: str,
    member_id: int | None,
    ordinal: int | None,
    claim: dict[str, Any] | None,
) -> MemberObservation:
    return MemberObservation(
        component=component,
        zone=zone,
        cluster=cluster,
        member_id=member_id,
        name=name,
        exists=False,
        ready=False,
        phase=None,
        deleting=False,
        node=None,
        version=None,
        config_hash=None,
        restarts=0,
        not_ready_since=None,
        volume_ok=_volume_ok(view, claim),
        ordinal=ordinal,
        **_placement(view, None, claim, ready=False),
    )


def _member(
    view: _View,
    component: str,
    zone: str,
    cluster: str,
    pod: dict[str, Any],
    ordinal: int | None,
    claim: dict[str, Any] | None,
) -> MemberObservation:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if claim is None:
        claim = _pod_claim(view, pod)
    ready_condition = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    ready = (
        ready_condition is not None
        and ready_condition.get("status") == "True"
        and not _deleting(pod)
        and status.get("phase") == "Running"
    )
    not_ready_since = None
    if not ready:
        not_ready_since = (
            (ready_condition or {}).get("lastTransitionTime")
            if ready_condition and ready_condition.get("status") != "True"
            else None
        ) or metadata.get("creationTimestamp")
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    node = spec.get("nodeName")
    disk = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == DISK_ALERT_CONDITION
            and c.get("status") == "True"
            and c.get("reason") in ("Critical", "Failed")
        ),
        None,
    )
    return MemberObservation(
        component=component,
        zone=zone,
        cluster=cluster,
        member_id=_int(labels.get(MEMBER)),
        name=metadata.get("name", ""),
        exists=True,
        ready=ready,
        phase=status.get("phase"),
        deleting=_deleting(pod),
        node=node,
        version=labels.get(VERSION_LABEL),
        config_hash=annotations.get(CONFIG_HASH),
        restarts=restarts,
        not_ready_since=not_ready_since,
        volume_ok=_volume_ok(view, claim),
        ordinal=ordinal,
        created=metadata.get("creationTimestamp"),
        uid=metadata.get("uid"),
        disk_alert=str(disk["reason"]).lower() if disk else None,
        disk_alert_since=(disk or {}).get("lastTransitionTime"),
        **_placement(view, node, claim, ready=ready),
    )


def _placement(
    view: _View, node: str | None, claim: dict[str, Any] | None, *, ready: bool
) -> dict[str, Any]:
    """Where the member and its data live, and whether that place is lost: the fields
    ``node_ok``, ``lost_node``, ``lost_since``, ``volume_node``, ``claim_uid`` and
    ``fresh_volume`` of an observation."""
    volume_node = pinned_node(_volume(view, claim))
    depends_on = node or volume_node
    lost = depends_on is not None and not _node_ok(view, depends_on)
    annotations = ((claim or {}).get("metadata") or {}).get("annotations") or {}
    return {
        "node_ok": not lost,
        "lost_node": depends_on if lost else None,
        "lost_since": _not_ready_since(view, depends_on) if lost and depends_on else None,
        "volume_node": volume_node,
        "claim_uid": ((claim or {}).get("metadata") or {}).get("uid"),
        "fresh_volume": FRESH_VOLUME in annotations and not ready,
    }


def _pod_claim(view: _View, pod: dict[str, Any]) -> dict[str, Any] | None:
    namespace = pod["metadata"].get("namespace")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            return view.named("PersistentVolumeClaim", claim, namespace)
    return None


def _volume(view: _View, claim: dict[str, Any] | None) -> dict[str, Any] | None:
    if claim is None:
        return None
    volume = (claim.get("spec") or {}).get("volumeName")
    return view.named("PersistentVolume", volume) if volume else None


def _volume_ok(view: _View, claim: dict[str, Any] | None) -> bool:
    if claim is None:
        return True
    if (claim.get("status") or {}).get("phase") == "Lost":
        return False
    volume = _volume(view, claim)
    return volume is None or (volume.get("status") or {}).get("phase") != "Failed"


def pinned_node(volume: dict[str, Any] | None) -> str | None:
    """The node a local volume is pinned to by its node affinity (``None``: the volume
    is network-attached and reachable from any node)."""
    if volume is None:
        return None
    for term in (((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == "kubernetes.io/hostname":
                values = expression.get("values") or []
                if len(values) == 1:
                    return str(values[0])
    return None


def _not_ready_since(view: _View, node: str) -> str | None:
    found = view.named("Node", node)
    for condition in ((found or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("lastTransitionTime")
    return None


def _node_ok(view: _View, node: str) -> bool:
    if not view.kind("Node"):
        return True
    found = view.named("Node", node)
    if found is None:
        return False
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return True


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "FRESH_VOLUME",
    "MemberObservation",
    "ObjectKey",
    "ZoneObservation",
    "object_key",
    "observe_zone",
    "pinned_node",
]
