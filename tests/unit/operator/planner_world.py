"""Synthetic member-cluster state for planner tests: live objects built from rendered
manifests, with members ready, stale, down or missing as a test asks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from milkyway.kube.labels import CONFIG_HASH
from milkyway.operator.observe import FRESH_VOLUME, ZoneObservation, observe_zone

VERSION = "app.kubernetes.io/version"
LONG_AGO = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Member:
    """How one StatefulSet member looks: ``state`` is ready, stale-config, stale-version,
    down (not Ready since ``since``) or missing."""

    state: str = "ready"
    since: str = LONG_AGO
    disk_failed: bool = False
    node_lost: str | None = None
    """RFC 3339 time the member's node stopped being Ready (its node is then NotReady)."""
    fresh_volume: bool = False
    """The member's claim is a new, empty one from a replacement."""
    disk_alert: tuple[str, str] | None = None
    """(reason, since) of the pod's DiskAlert condition: ``("Critical", time)``."""


def live_zone(
    component: str,
    zone: str,
    manifests: list[dict[str, Any]],
    members: list[Member],
    *,
    config_map_current: bool = True,
    local_volumes: bool = False,
) -> ZoneObservation:
    """The observation of a zone whose objects are ``manifests`` and whose StatefulSet has
    one pod per entry of ``members`` (ordinal = position), member ``i`` on node
    ``node-<i>``; ``local_volumes``: each claim's volume is pinned to its member's node."""
    objects: list[dict[str, Any]] = []
    sts_name = None
    template: Mapping[str, Any] = {}
    for manifest in manifests:
        obj = copy.deepcopy(manifest)
        if obj["kind"] == "ConfigMap" and not config_map_current:
            obj["metadata"]["annotations"][CONFIG_HASH] = "old-config"
        if obj["kind"] == "StatefulSet":
            sts_name = obj["metadata"]["name"]
            obj["spec"]["replicas"] = len(members)
            template = obj["spec"]["template"]["metadata"]
            if not config_map_current:
                obj["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH] = "old-hash"
        objects.append(obj)
    assert sts_name is not None, "live_zone models StatefulSet components"
    namespace = manifests[0]["metadata"]["namespace"]
    for ordinal, member in enumerate(members):
        name = f"{sts_name}-{ordinal}"
        claim = f"data-{name}"
        node = f"node-{ordinal}"
        claim_meta: dict[str, Any] = {
            "name": claim,
            "namespace": namespace,
            "labels": template["labels"],
            "uid": f"claim-{name}",
        }
        if member.fresh_volume:
            claim_meta["annotations"] = {FRESH_VOLUME: "true"}
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_meta,
                "spec": {"volumeName": f"pv-{name}"},
                "status": {"phase": "Bound"},
            }
        )
        pinned = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                        ]
                    }
                ]
            }
        }
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"pv-{name}"},
                "spec": {"nodeAffinity": pinned} if local_volumes else {},
                "status": {"phase": "Failed" if member.disk_failed else "Bound"},
            }
        )
        if any(m.node_lost for m in members):
            lost = member.node_lost
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": node},
                    "status": {
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "Unknown" if lost else "True",
                                "lastTransitionTime": lost or LONG_AGO,
                            }
                        ]
                    },
                }
            )
        if member.state == "missing":
            continue
        labels = dict(template["labels"])
        annotations = dict(template["annotations"])
        if member.state == "stale-version":
            labels[VERSION] = "0.0.1"
        if member.state == "stale-config":
            annotations[CONFIG_HASH] = "old-hash"
        ready = member.state != "down" and not member.node_lost
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": annotations,
                    "creationTimestamp": LONG_AGO,
                    "uid": f"uid-{name}",
                },
                "spec": {
                    "nodeName": node,
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
                },
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True" if ready else "False",
                            "lastTransitionTime": (member.node_lost or member.since)
                            if not ready
                            else LONG_AGO,
                        },
                        *(
                            [
                                {
                                    "type": "milkyway.ebay.com/DiskAlert",
                                    "status": "True",
                                    "reason": member.disk_alert[0],
                                    "lastTransitionTime": member.disk_alert[1],
                                }
                            ]
                            if member.disk_alert
                            else []
                        ),
                    ],
                },
            }
        )
    return observe_zone(component, zone, zone, objects)
