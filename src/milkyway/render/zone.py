"""Render one component in one zone into the Kubernetes objects that should exist there.

This is the WISB ("what it should be") the operator diffs against the live objects, so the
output is deterministic (same input, same list, same order) and holds only fields Milkyway
sets: no status, no server-filled metadata.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from milkyway.kube.agent_contract import AGENT_CONFIG_FILE
from milkyway.kube.labels import (
    CONFIG_HASH,
    MEMBER,
    VERSION_LABEL,
    common_labels,
    selector_labels,
)
from milkyway.model.cluster import Cluster
from milkyway.model.resolve import ResolvedApplication, ResolvedComponent, ResolvedZone
from milkyway.render.context import member_hostname, members, template_context
from milkyway.render.naming import base_name, member_name, zone_dns
from milkyway.render.pod import MEMBERS_FILE, PodInputs, pod_template
from milkyway.render.templating import render_template

LOCAL_STORAGE_CLASS = "milkyway-local"
DEFAULT_LOCAL_PATH = "/mnt/milkyway"
DEFAULT_STORAGE_SIZE = "10Gi"

_KIND_ORDER = {
    "ConfigMap": 0,
    "Service": 1,
    "PodDisruptionBudget": 2,
    "PersistentVolume": 3,
    "PersistentVolumeClaim": 4,
    "StatefulSet": 5,
    "Deployment": 6,
    "Pod": 7,
}


def render_zone(
    app: ResolvedApplication,
    component: str,
    zone: str,
    cluster: Cluster | None = None,
    clusters: Mapping[str, Cluster] | None = None,
) -> list[dict[str, Any]]:
    """The manifests of ``component`` in ``zone``, for the member cluster ``cluster``.

    ``clusters`` maps zone names to their Cluster resources, for the DNS names of members in
    other zones; ``cluster`` (when given) is added to it for ``zone``. Zones without a
    Cluster use the defaults of :mod:`milkyway.render.naming`.
    """
    directory = dict(clusters or {})
    if cluster is not None:
        directory[zone] = cluster
    resolved = app.components[component]
    zone_spec = resolved.zone(zone)
    renderer = _ZoneRenderer(app, resolved, zone_spec, directory)
    objects = copy.deepcopy(renderer.render())
    return sorted(objects, key=lambda o: (_KIND_ORDER[o["kind"]], o["metadata"]["name"]))


def render_application(
    app: ResolvedApplication, clusters: Mapping[str, Cluster] | None = None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every (component, zone) of ``app`` in dependency order, rendered."""
    return {
        (name, zone.name): render_zone(app, name, zone.name, clusters=clusters)
        for name, component in app.components.items()
        for zone in component.zones
    }


def _digest(value: Any) -> str:
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


class _ZoneRenderer:
    def __init__(
        self,
        app: ResolvedApplication,
        component: ResolvedComponent,
        zone: ResolvedZone,
        clusters: Mapping[str, Cluster],
    ) -> None:
        self.app = app
        self.component = component
        self.zone = zone
        self.clusters = clusters
        self.spec = component.type.spec
        self.base = base_name(app.name, component.name, zone.name)
        self.namespace = app.namespace
        self.labels = common_labels(
            app.name, component.name, zone.name, zone.region, component.type.name, zone.version
        )
        self.selector = selector_labels(app.name, component.name, zone.name)
        self.context = template_context(app, component, zone, clusters)

    def render(self) -> list[dict[str, Any]]:
        files = self._config_files(self.context)
        restart_hash = self._restart_hash()
        config_map = self._config_map(files)
        objects: list[dict[str, Any]] = [config_map, self._service()]
        pdb = self._pdb()
        if pdb is not None:
            objects.append(pdb)
        annotations = {CONFIG_HASH: restart_hash}
        workload = self.component.workload
        if workload == "statefulset":
            objects.append(self._statefulset(annotations))
        elif workload == "deployment":
            objects.append(self._deployment(annotations))
        else:
            for ordinal, member_id in enumerate(self.zone.member_ids):
                objects.extend(self._member(ordinal, member_id, annotations, workload))
        return objects

    # config ------------------------------------------------------------------------------

    def _config_files(self, context: dict[str, Any]) -> dict[str, str]:
        name = self.component.type.name
        files = {
            item.name: render_template(item.template, context, f"ComponentType {name} {item.name}")
            for item in self.spec.config_files
        }
        if self.spec.agent.model_fields_set:
            declaration = self.spec.agent.model_dump(
                mode="json", by_alias=True, exclude_defaults=True
            )
            files[AGENT_CONFIG_FILE] = json.dumps(declaration, sort_keys=True) + "\n"
        if self.component.workload == "statefulset":
            files[MEMBERS_FILE] = "".join(
                f"{m['ordinal']} {m['id']} {m['host']}\n"
                for m in members(self.app, self.component, self.zone.name, self.clusters)
                if m["zone"] == self.zone.name
            )
        return files

    def _restart_hash(self) -> str:
        """Hash of everything whose change needs a restart: hot-reloadable params are
        pinned to their defaults first, so changing only those keeps the pod template."""
        pinned = dict(self.context)
        params = dict(self.context["params"])
        for param in self.spec.params:
            if param.hot_reload:
                params[param.name] = param.default
        pinned["params"] = params
        return _digest(
            {
                "files": self._config_files(pinned),
                "start": self._start_script(pinned),
                "env": self._type_env(pinned),
                "image": self.zone.image,
            }
        )

    def _config_map(self, files: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self._metadata(
                f"{self.base}-config", annotations={CONFIG_HASH: _digest(files)}
            ),
            "data": files,
        }

    def _start_script(self, context: dict[str, Any]) -> str:
        return render_template(
            self.spec.container.start, context, f"ComponentType {self.component.type.name} start"
        )

    def _type_env(self, context: dict[str, Any]) -> list[dict[str, Any]]:
        name = self.component.type.name
        return [
            {"name": key, "value": render_template(value, context, f"ComponentType {name} env")}
            for key, value in sorted(self.spec.container.env.items())
        ]

    def _env(self, member_id: int | None, host: str | None) -> list[dict[str, Any]]:
        env: list[dict[str, Any]] = [
            {"name": "MILKYWAY_APPLICATION", "value": self.app.name},
            {"name": "MILKYWAY_NAMESPACE", "value": self.namespace},
            {"name": "MILKYWAY_COMPONENT", "value": self.component.name},
            {"name": "MILKYWAY_REGION", "value": self.zone.region},
            {"name": "MILKYWAY_ZONE", "value": self.zone.name},
        ]
        if member_id is not None and host is not None:
            env.append({"name": "MILKYWAY_MEMBER_ID", "value": str(member_id)})
            env.append({"name": "MILKYWAY_MEMBER_HOST", "value": host})
        elif self.component.workload == "deployment":
            env.append(
                {
                    "name": "MILKYWAY_MEMBER_HOST",
                    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                }
            )
        return env + self._type_env(self.context)

    # objects -----------------------------------------------------------------------------

    def _metadata(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        namespaced: bool = True,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if namespaced:
            metadata["namespace"] = self.namespace
        metadata["labels"] = dict(labels or self.labels)
        if annotations:
            metadata["annotations"] = annotations
        return metadata

    def _service(self) -> dict[str, Any]:
        ports = [
            {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol}
            for p in self.spec.ports
        ]
        spec: dict[str, Any] = {"selector": self.selector, "ports": ports}
        if self.component.workload == "deployment":
            spec["type"] = "ClusterIP"
        else:
            spec["clusterIP"] = "None"
            spec["publishNotReadyAddresses"] = True
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._metadata(self.base),
            "spec": spec,
        }

    def _pdb(self) -> dict[str, Any] | None:
        """Per-zone share of the disruption policy. A quorum of n tolerates (n-1)/2 members
        down across all zones; a budget of 0 is not rendered, as it would block node drains
        forever (the operator still guards its own restarts)."""
        policy = self.spec.disruption
        if self.zone.size == 0:
            return None
        if policy.kind == "quorum":
            budget = min(self.zone.size, (self.component.size - 1) // 2)
        else:
            budget = min(self.zone.size, policy.max_unavailable)
        if budget < 1:
            return None
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self._metadata(self.base),
            "spec": {"maxUnavailable": budget, "selector": {"matchLabels": self.selector}},
        }

    def _pod_inputs(
        self,
        annotations: dict[str, str],
        labels: dict[str, str],
        env: list[dict[str, Any]],
        data_volume: dict[str, Any] | None,
        hostname: str | None = None,
        node: str | None = None,
    ) -> PodInputs:
        return PodInputs(
            spec=self.spec,
            image=self.zone.image,
            start_script=self._start_script(self.context),
            env=env,
            labels=labels,
            annotations=annotations,
            config_map=f"{self.base}-config",
            resources=self.zone.resources,
            data_volume=data_volume,
            hostname=hostname,
            subdomain=self.base if hostname else None,
            node=node,
        )

    def _claim_spec(self, storage_class: str | None, volume: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": self._storage_size()}},
        }
        if storage_class:
            spec["storageClassName"] = storage_class
        if volume:
            spec["volumeName"] = volume
        return spec

    def _claim_labels(self) -> dict[str, str]:
        """Labels of a StatefulSet's claim template: no version, because Kubernetes never
        lets claim templates change, and a volume outlives the versions run on it."""
        return {k: v for k, v in self.labels.items() if k != VERSION_LABEL}

    def _storage_size(self) -> str:
        return self.zone.storage.size or DEFAULT_STORAGE_SIZE

    def _statefulset(self, annotations: dict[str, str]) -> dict[str, Any]:
        template = pod_template(
            self._pod_inputs(annotations, self.labels, self._env(None, None), None)
        )
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": self._metadata(self.base),
            "spec": {
                "serviceName": self.base,
                "replicas": self.zone.size,
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "OnDelete"},
                "persistentVolumeClaimRetentionPolicy": {
                    "whenDeleted": "Retain",
                    "whenScaled": "Retain",
                },
                "selector": {"matchLabels": self.selector},
                "template": template,
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data", "labels": self._claim_labels()},
                        "spec": self._claim_spec(self.zone.storage.storage_class),
                    }
                ],
            },
        }

    def _deployment(self, annotations: dict[str, str]) -> dict[str, Any]:
        template = pod_template(
            self._pod_inputs(annotations, self.labels, self._env(None, None), {"emptyDir": {}})
        )
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self._metadata(self.base),
            "spec": {
                "replicas": self.zone.size,
                "selector": {"matchLabels": self.selector},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {
                        "maxUnavailable": self.spec.disruption.max_unavailable,
                        "maxSurge": 1,
                    },
                },
                "template": template,
            },
        }

    def _member(
        self, ordinal: int, member_id: int, annotations: dict[str, str], workload: str
    ) -> list[dict[str, Any]]:
        """One member's own objects: a claim plus a single-replica Deployment
        (deploymentset), or a local PersistentVolume, its claim and a Pod (pods)."""
        name = member_name(self.base, member_id)
        hostname = member_hostname(self.component, self.base, ordinal, member_id)
        host = next(
            m["host"]
            for m in members(self.app, self.component, self.zone.name, self.clusters)
            if m["zone"] == self.zone.name and m["id"] == member_id
        )
        labels = {**self.labels, MEMBER: str(member_id)}
        claim_name = f"{name}-data"
        env = self._env(member_id, host)
        objects: list[dict[str, Any]] = []
        node: str | None = None
        if workload == "pods":
            node = self.zone.nodes[ordinal]
            storage_class = self.zone.storage.storage_class or LOCAL_STORAGE_CLASS
            volume = f"{self.namespace}-{name}"
            objects.append(self._local_volume(volume, labels, storage_class, node, name))
            claim_spec = self._claim_spec(storage_class, volume)
        else:
            claim_spec = self._claim_spec(self.zone.storage.storage_class)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": self._metadata(claim_name, labels),
                "spec": claim_spec,
            }
        )
        template = pod_template(
            self._pod_inputs(
                annotations,
                labels,
                env,
                {"persistentVolumeClaim": {"claimName": claim_name}},
                hostname=hostname,
                node=node,
            )
        )
        if workload == "pods":
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        **self._metadata(name, labels),
                        "annotations": template["metadata"]["annotations"],
                    },
                    "spec": {**template["spec"], "restartPolicy": "Always"},
                }
            )
        else:
            objects.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": self._metadata(name, labels),
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {**self.selector, MEMBER: str(member_id)}},
                        "strategy": {"type": "Recreate"},
                        "template": template,
                    },
                }
            )
        return objects

    def _local_volume(
        self, volume: str, labels: dict[str, str], storage_class: str, node: str, name: str
    ) -> dict[str, Any]:
        root = (self.zone.storage.local_path or DEFAULT_LOCAL_PATH).rstrip("/")
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": self._metadata(volume, labels, namespaced=False),
            "spec": {
                "capacity": {"storage": self._storage_size()},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": storage_class,
                "volumeMode": "Filesystem",
                "local": {"path": f"{root}/{self.namespace}/{name}"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [node],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }


__all__ = ["render_application", "render_zone", "zone_dns"]
