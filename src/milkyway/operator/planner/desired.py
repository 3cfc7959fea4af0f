"""WISB digested for diffing: one zone's rendered manifests as members, hashes and keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from milkyway.kube.generated_secrets import SECRET_SOURCE
from milkyway.kube.labels import CONFIG_HASH, MEMBER, selector_labels
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent
from milkyway.operator.observe import VERSION_LABEL
from milkyway.operator.planner.contract import MEMBER_KINDS
from milkyway.render.naming import base_name


@dataclass(frozen=True)
class MemberWant:
    """One member the zone should have."""

    name: str
    """Pod name (statefulset, pods) or member Deployment name (deploymentset)."""
    ordinal: int | None
    member_id: int | None
    claim: str | None
    volume: str | None
    manifests: tuple[dict[str, Any], ...]
    """The member's own objects (per-member patterns: Deployment or Pod, claim, local
    volume): created when missing, re-applied when it restarts or is replaced."""


@dataclass(frozen=True)
class ZoneWant:
    """The rendered WISB of one component in one zone, digested for diffing."""

    component: str
    zone: str
    cluster: str
    namespace: str
    workload: str
    size: int
    selector: Mapping[str, str]
    manifests: tuple[dict[str, Any], ...]
    """Every object except the per-member ones."""
    members: tuple[MemberWant, ...]
    pod_hash: str | None
    version: str | None
    config_map_hash: str | None
    keys: frozenset[tuple[str, str, str]]
    """Keys of every desired object, as :func:`milkyway.operator.observe.object_key`."""

    def entry(self, require_updated: bool = False) -> dict[str, Any]:
        """Flow parameters describing this zone."""
        return {
            "zone": self.zone,
            "cluster": self.cluster,
            "namespace": self.namespace,
            "workload": self.workload,
            "selector": dict(self.selector),
            "replicas": self.size,
            "version": self.version or "",
            "configHash": self.pod_hash or "",
            "configMapHash": self.config_map_hash or "",
            "manifests": list(self.manifests),
            "memberManifests": [m for member in self.members for m in member.manifests],
            "requireUpdated": require_updated,
        }


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        f"{obj.get('apiVersion', '')}/{obj.get('kind', '')}",
        metadata.get("namespace") or "",
        metadata.get("name", ""),
    )


def _with_secret_source(
    obj: dict[str, Any],
    resolved: ResolvedApplication,
    component: ResolvedComponent,
    clusters: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The zone's ConfigMap naming the cluster of the component's first zone, which holds
    the source of truth of the Secrets Milkyway generates (when the type declares any):
    applying any zone creates them there first and copies them from there."""
    if not any(s.generate for s in component.type.spec.agent.secrets) or not component.zones:
        return obj
    first = component.zones[0].name
    source = _cluster_of(first, component.zone(first).cluster, clusters)
    metadata = dict(obj["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SECRET_SOURCE: source}
    return {**obj, "metadata": metadata}


def _cluster_of(zone: str, override: str | None, clusters: Mapping[str, dict[str, Any]]) -> str:
    if override:
        return override
    found = clusters.get(zone)
    if found:
        return str((found.get("metadata") or {}).get("name") or zone)
    return zone


def zone_want(
    resolved: ResolvedApplication,
    component: ResolvedComponent,
    zone: str,
    manifests: Sequence[dict[str, Any]],
    clusters: Mapping[str, dict[str, Any]],
) -> ZoneWant:
    spec = component.zone(zone)
    base = base_name(resolved.name, component.name, zone)
    shared: list[dict[str, Any]] = []
    per_member: dict[int, list[dict[str, Any]]] = {}
    template: Mapping[str, Any] = {}
    config_map_hash = None
    for obj in manifests:
        kind = obj.get("kind")
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if kind == "ConfigMap":
            config_map_hash = ((obj["metadata"].get("annotations")) or {}).get(CONFIG_HASH)
            obj = _with_secret_source(obj, resolved, component, clusters)
        if kind in ("StatefulSet", "Deployment") and not template:
            template = obj["spec"]["template"]["metadata"]
        if kind == "Pod" and not template:
            template = obj["metadata"]
        member = labels.get(MEMBER)
        if member is not None and kind in MEMBER_KINDS:
            per_member.setdefault(int(member), []).append(obj)
        else:
            shared.append(obj)
    members: list[MemberWant] = []
    if component.workload == "statefulset":
        for ordinal in range(spec.size):
            name = f"{base}-{ordinal}"
            members.append(MemberWant(name, ordinal, None, f"data-{name}", None, ()))
    elif component.workload in ("deploymentset", "pods"):
        for ordinal, member_id in enumerate(spec.member_ids):
            name = f"{base}-m{member_id}"
            volume = f"{resolved.namespace}-{name}" if component.workload == "pods" else None
            members.append(
                MemberWant(
                    name,
                    ordinal,
                    member_id,
                    f"{name}-data",
                    volume,
                    tuple(per_member.get(member_id, ())),
                )
            )
    return ZoneWant(
        component=component.name,
        zone=zone,
        cluster=_cluster_of(zone, spec.cluster, clusters),
        namespace=resolved.namespace,
        workload=component.workload,
        size=spec.size,
        selector=selector_labels(resolved.name, component.name, zone),
        manifests=tuple(shared),
        members=tuple(members),
        pod_hash=(template.get("annotations") or {}).get(CONFIG_HASH),
        version=(template.get("labels") or {}).get(VERSION_LABEL),
        config_map_hash=config_map_hash,
        keys=frozenset(_key(obj) for obj in manifests),
    )
