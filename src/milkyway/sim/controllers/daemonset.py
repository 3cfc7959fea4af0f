"""The DaemonSet controller's pure core: one pod on every node that should run one.

As kube-controller-manager's daemon controller: a node should run the daemon pod when
the template's ``nodeSelector`` and required node affinity match it and the pod tolerates
its ``NoSchedule``/``NoExecute`` taints (with the tolerations a real server adds to every
daemon pod). Each pod is pinned to its node by a ``matchFields metadata.name`` node
affinity and left to the scheduler; pods on nodes that no longer qualify, and extra pods
on one node, are deleted. ``RollingUpdate`` replaces pods of an older template
(``controller-revision-hash`` label) at most ``maxUnavailable`` at a time; ``OnDelete``
waits for the user to delete them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milkyway.sim.controllers.actions import PODS, Action, Create, Delete, Event, Patch
from milkyway.sim.controllers.objects import (
    Obj,
    controller_ref,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    labels_of,
    meta,
    name_of,
    namespace_of,
    object_ref,
    pod_phase,
    scaled_int_or_percent,
    template_hash,
    uid_of,
)
from milkyway.sim.controllers.scheduler import _matches_node_selector_and_affinity, _tolerates

SOURCE = "daemonset-controller"
DAEMONSETS = ("apps", "v1", "daemonsets")
REVISION_LABEL = "controller-revision-hash"
_DAEMON_TOLERATIONS: tuple[dict[str, Any], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


@dataclass(frozen=True)
class DaemonSetView:
    daemonset: Obj
    nodes: Sequence[Obj]
    pods: Sequence[Obj]
    """Pods controlled by the DaemonSet (any state)."""


def _pod_spec(ds: Obj) -> Obj:
    return ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}


def revision(ds: Obj) -> str:
    return template_hash((ds.get("spec") or {}).get("template") or {})


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """The template's tolerations plus those every daemon pod gets."""
    tolerations = list(spec.get("tolerations") or [])
    for extra in _DAEMON_TOLERATIONS:
        if not any(
            t.get("key") == extra["key"] and t.get("effect") == extra["effect"] for t in tolerations
        ):
            tolerations.append(dict(extra))
    return tolerations


def should_run(ds: Obj, node: Obj) -> bool:
    spec = dict(_pod_spec(ds))
    if not _matches_node_selector_and_affinity(spec, node):
        return False
    spec["tolerations"] = daemon_tolerations(spec)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(spec, taint):
            return False
    return True


def node_of(pod: Obj) -> str:
    """The node a daemon pod is for: where it runs, or the node its affinity pins it to."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return str(node)
    terms = (
        (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return ""


def new_pod(ds: Obj, node: str, hash_: str) -> Obj:
    template = (ds.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_LABEL] = hash_
    pod_meta: dict[str, Any] = {
        "generateName": f"{name_of(ds)}-",
        "namespace": namespace_of(ds),
        "labels": labels,
        "ownerReferences": [controller_ref(ds)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        }
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def reconcile_daemonset(view: DaemonSetView, now: datetime) -> list[Action]:
    ds = view.daemonset
    if is_terminating(ds):
        return []
    spec = ds.get("spec") or {}
    ns = namespace_of(ds)
    ref = object_ref(ds)
    hash_ = revision(ds)
    min_ready = int(spec.get("minReadySeconds") or 0)
    wanted = {name_of(n) for n in view.nodes if should_run(ds, n)}
    by_node: dict[str, list[Obj]] = {}
    for pod in view.pods:
        if not is_terminating(pod) and pod_phase(pod) not in ("Succeeded", "Failed"):
            by_node.setdefault(node_of(pod), []).append(pod)
    actions: list[Action] = []
    created = 0
    for node in sorted(wanted):
        pods = by_node.get(node, [])
        if not pods:
            actions.append(Create(PODS, ns, new_pod(ds, node, hash_)))
            created += 1
        for extra in sorted(pods, key=lambda p: meta(p).get("creationTimestamp", ""))[1:]:
            actions.append(Delete(PODS, ns, name_of(extra), uid=uid_of(extra)))
    if created:
        actions.append(
            Event(ref, "Normal", "SuccessfulCreate", f"Created {created} pod(s)", SOURCE)
        )
    misplaced = [p for node, pods in by_node.items() if node not in wanted for p in pods]
    for pod in misplaced:
        actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        actions.append(
            Event(ref, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}", SOURCE)
        )
    actions.extend(_roll(ds, wanted, by_node, hash_, min_ready, now))
    patch = _status(ds, wanted, by_node, hash_, min_ready, now)
    if patch is not None:
        actions.append(patch)
    return actions


def _roll(
    ds: Obj,
    wanted: set[str],
    by_node: dict[str, list[Obj]],
    hash_: str,
    min_ready: int,
    now: datetime,
) -> list[Action]:
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return []
    rolling = strategy.get("rollingUpdate") or {}
    budget = scaled_int_or_percent(rolling.get("maxUnavailable", 1), len(wanted), round_up=True)
    budget = max(budget, 1)
    unavailable = sum(
        1
        for node in wanted
        if not any(is_pod_available(p, min_ready, now) for p in by_node.get(node, []))
    )
    old = [
        p
        for node in sorted(wanted)
        for p in by_node.get(node, [])[:1]
        if labels_of(p).get(REVISION_LABEL) != hash_
    ]
    # Pods that serve nothing go first, whatever the budget.
    old.sort(key=lambda p: is_pod_available(p, min_ready, now))
    actions: list[Action] = []
    for pod in old:
        available = is_pod_available(pod, min_ready, now)
        if available and unavailable >= budget:
            break
        if available:
            unavailable += 1
        actions.append(Delete(PODS, namespace_of(pod), name_of(pod), uid=uid_of(pod)))
    return actions


def _status(
    ds: Obj,
    wanted: set[str],
    by_node: dict[str, list[Obj]],
    hash_: str,
    min_ready: int,
    now: datetime,
) -> Patch | None:
    scheduled = [n for n in wanted if by_node.get(n)]
    first = {n: by_node[n][0] for n in scheduled}
    ready = sum(1 for p in first.values() if is_pod_ready(p))
    available = sum(1 for p in first.values() if is_pod_available(p, min_ready, now))
    status: Obj = {
        "currentNumberScheduled": len(scheduled),
        "numberMisscheduled": sum(len(p) for n, p in by_node.items() if n not in wanted),
        "desiredNumberScheduled": len(wanted),
        "numberReady": ready,
        "observedGeneration": meta(ds).get("generation", 1),
        "updatedNumberScheduled": sum(
            1 for p in first.values() if labels_of(p).get(REVISION_LABEL) == hash_
        ),
        "numberAvailable": available,
        "numberUnavailable": len(wanted) - available,
    }
    old = ds.get("status") or {}
    if all(old.get(k, 0) == v for k, v in status.items()):
        return None
    patch = {k: (v if v or k in _ALWAYS else None) for k, v in status.items()}
    return Patch(DAEMONSETS, namespace_of(ds), name_of(ds), {"status": patch}, "status")


_ALWAYS = frozenset(
    {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"}
)
