"""The ReplicaSet controller's pure core: keep ``spec.replicas`` active pods, report status.

Surplus pods are chosen as kube-controller-manager does: unscheduled before scheduled,
Pending before Running, not-Ready before Ready, youngest first, so a scale-down removes
the pods that serve least.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milkyway.sim.apiserver.selectors import label_selector_matches
from milkyway.sim.controllers.actions import (
    PODS,
    REPLICASETS,
    Action,
    Create,
    Delete,
    Event,
    Patch,
    Resource,
)
from milkyway.sim.controllers.objects import (
    Obj,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    labels_of,
    meta,
    name_of,
    namespace_of,
    object_ref,
    pod_phase,
    replicas_of,
    uid_of,
)

SOURCE = "replicaset-controller"
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True)
class ReplicaSetView:
    rs: Obj
    pods: Sequence[Obj]
    """Pods controlled by the ReplicaSet (any state)."""


def new_pod(rs: Obj) -> Obj:
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {
        "generateName": f"{name_of(rs)}-",
        "namespace": namespace_of(rs),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [controller_ref(rs)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _deletion_rank(pod: Obj) -> tuple[int, int, int, str]:
    created = meta(pod).get("creationTimestamp", "")
    inverted = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(pod_phase(pod), 3),
        1 if is_pod_ready(pod) else 0,
        inverted,
    )


def reconcile_replicaset(
    view: ReplicaSetView, now: datetime, resource: Resource = REPLICASETS
) -> list[Action]:
    """Reconcile a ReplicaSet, or (``resource`` the replicationcontrollers) a
    ReplicationController whose map selector the caller gave as ``matchLabels``."""
    rs = view.rs
    if is_terminating(rs):
        return []
    ns = namespace_of(rs)
    active = [p for p in view.pods if is_pod_active(p)]
    diff = len(active) - replicas_of(rs)
    actions: list[Action] = []
    ref = object_ref(rs)
    if diff < 0:
        for _ in range(-diff):
            actions.append(Create(PODS, ns, new_pod(rs)))
        actions.append(Event(ref, "Normal", "SuccessfulCreate", f"Created {-diff} pod(s)", SOURCE))
    elif diff > 0:
        for pod in sorted(active, key=_deletion_rank)[:diff]:
            actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
            actions.append(
                Event(ref, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}", SOURCE)
            )
    patch = status_patch(rs, active, now, resource)
    if patch is not None:
        actions.append(patch)
    return actions


def status_patch(
    rs: Obj, active: Sequence[Obj], now: datetime, resource: Resource = REPLICASETS
) -> Patch | None:
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    selector = (rs.get("spec") or {}).get("selector")
    template_labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels"
    ) or {}
    status = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(
            1
            for p in active
            if all(labels_of(p).get(k) == v for k, v in template_labels.items())
            and (selector is None or label_selector_matches(selector, labels_of(p)))
        ),
        "readyReplicas": sum(1 for p in active if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in active if is_pod_available(p, min_ready, now)),
        "observedGeneration": meta(rs).get("generation", 1),
    }
    old = rs.get("status") or {}
    if all(old.get(k, 0) == v for k, v in status.items()):
        return None
    return Patch(resource, namespace_of(rs), name_of(rs), {"status": status}, "status")
