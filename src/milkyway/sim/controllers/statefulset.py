"""The StatefulSet controller's pure core.

One call of :func:`reconcile_statefulset` is one pass of kube-controller-manager's
``StatefulSetControl.UpdateStatefulSet``: create missing ordinals (in order and only
after the previous one is Ready under ``OrderedReady``, all at once under ``Parallel``),
remove condemned ordinals from the highest down, then roll pods whose revision differs
from the update revision, highest ordinal first, never below ``partition`` and never
with more than ``maxUnavailable`` pods unavailable. ``OnDelete`` leaves existing pods
alone; pods deleted by someone else come back at the update revision. Claims from
``volumeClaimTemplates`` are created per ordinal and outlive their pods unless the
``persistentVolumeClaimRetentionPolicy`` says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from milkyway.sim.controllers.actions import (
    CONTROLLER_REVISIONS,
    PODS,
    PVCS,
    STATEFULSETS,
    Action,
    Create,
    Delete,
    Event,
    Patch,
)
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
    replicas_of,
    scaled_int_or_percent,
    template_hash,
    uid_of,
)

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
SOURCE = "statefulset-controller"


@dataclass(frozen=True)
class StatefulSetView:
    """What the core observes about one StatefulSet."""

    sts: Obj
    pods: Mapping[int, Obj]
    """Pods controlled by the set, by ordinal."""
    claims: Mapping[str, Obj]
    """PVCs of the namespace that the set's templates would name, by name."""
    revisions: Mapping[str, Obj] = field(default_factory=dict)
    """ControllerRevisions owned by the set, by name."""


def ordinal_of(sts_name: str, pod_name: str) -> int | None:
    prefix = sts_name + "-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix) :]
    return int(tail) if tail.isdigit() else None


def claim_name(template_name: str, sts_name: str, ordinal: int) -> str:
    return f"{template_name}-{sts_name}-{ordinal}"


def revision_name(sts: Obj) -> str:
    spec = sts.get("spec") or {}
    return f"{name_of(sts)}-{template_hash(spec.get('template') or {})}"


def _spec(sts: Obj) -> dict[str, Any]:
    return sts.get("spec") or {}


def _start_ordinal(sts: Obj) -> int:
    return int((_spec(sts).get("ordinals") or {}).get("start", 0) or 0)


def _strategy(sts: Obj) -> tuple[str, int, int | str]:
    strategy = _spec(sts).get("updateStrategy") or {}
    kind = strategy.get("type") or "RollingUpdate"
    rolling = strategy.get("rollingUpdate") or {}
    return kind, int(rolling.get("partition") or 0), rolling.get("maxUnavailable") or 1


def _retention(sts: Obj) -> tuple[str, str]:
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or "Retain", policy.get("whenScaled") or "Retain"


def _template_for(view: StatefulSetView, revision: str) -> dict[str, Any]:
    """The pod template a revision stands for (rolling back needs the old one)."""
    if revision == revision_name(view.sts) or revision not in view.revisions:
        return _spec(view.sts).get("template") or {}
    data = view.revisions[revision].get("data") or {}
    return (data.get("spec") or {}).get("template") or _spec(view.sts).get("template") or {}


def new_pod(sts: Obj, template: Mapping[str, Any], ordinal: int, revision: str) -> Obj:
    name = f"{name_of(sts)}-{ordinal}"
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_LABEL] = revision
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    if _spec(sts).get("serviceName"):
        spec["subdomain"] = _spec(sts)["serviceName"]
    claims = {
        (t.get("metadata") or {}).get("name", ""): claim_name(
            (t.get("metadata") or {}).get("name", ""), name_of(sts), ordinal
        )
        for t in _spec(sts).get("volumeClaimTemplates") or []
    }
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    volumes += [{"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()]
    if volumes:
        spec["volumes"] = volumes
    pod_meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace_of(sts),
        "labels": labels,
        "ownerReferences": [controller_ref(sts)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def new_claims(sts: Obj, ordinal: int, existing: Mapping[str, Obj]) -> list[Obj]:
    """The ordinal's missing PVCs; with ``whenDeleted: Delete`` the set owns them."""
    when_deleted, _ = _retention(sts)
    selector_labels = ((_spec(sts).get("selector") or {}).get("matchLabels")) or {}
    out = []
    for template in _spec(sts).get("volumeClaimTemplates") or []:
        tname = (template.get("metadata") or {}).get("name", "")
        cname = claim_name(tname, name_of(sts), ordinal)
        if cname in existing:
            continue
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update(selector_labels)
        claim_meta: dict[str, Any] = {
            "name": cname,
            "namespace": namespace_of(sts),
            "labels": labels,
        }
        if when_deleted == "Delete":
            ref = controller_ref(sts)
            ref["controller"] = False
            claim_meta["ownerReferences"] = [ref]
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_meta,
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
        )
    return out


def _healthy(pod: Obj, min_ready: int, now: datetime) -> bool:
    return (
        not is_terminating(pod)
        and pod_phase(pod) == "Running"
        and is_pod_available(pod, min_ready, now)
    )


def _revision(pod: Obj) -> str:
    return labels_of(pod).get(REVISION_LABEL, "")


def reconcile_statefulset(view: StatefulSetView, now: datetime) -> list[Action]:
    """One level-based pass over a StatefulSet: the writes to make, then its new status."""
    sts = view.sts
    ns = namespace_of(sts)
    if is_terminating(sts):
        return []
    actions: list[Action] = []
    update_rev = revision_name(sts)
    if update_rev not in view.revisions:
        actions.append(Create(CONTROLLER_REVISIONS, ns, _new_revision(view, update_rev)))
    actions += _prune_revisions(view, update_rev)
    status = dict(sts.get("status") or {})
    current_rev = status.get("currentRevision") or update_rev
    if current_rev != update_rev and current_rev not in view.revisions:
        current_rev = update_rev
    actions += _pods_actions(view, current_rev, update_rev, now)
    patch = _status_patch(view, current_rev, update_rev, now)
    if patch is not None:
        actions.append(patch)
    return actions


def _new_revision(view: StatefulSetView, rev: str) -> Obj:
    numbers = [int(r.get("revision") or 0) for r in view.revisions.values()]
    template = _spec(view.sts).get("template") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": rev,
            "namespace": namespace_of(view.sts),
            "labels": {
                **(((_spec(view.sts).get("selector") or {}).get("matchLabels")) or {}),
                REVISION_LABEL: rev,
            },
            "ownerReferences": [controller_ref(view.sts)],
        },
        "data": {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}},
        "revision": max(numbers, default=0) + 1,
    }


def _prune_revisions(view: StatefulSetView, update_rev: str) -> list[Action]:
    limit = _spec(view.sts).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    live = {_revision(p) for p in view.pods.values()}
    live |= {update_rev, (view.sts.get("status") or {}).get("currentRevision", "")}
    history = sorted(
        (r for n, r in view.revisions.items() if n not in live),
        key=lambda r: int(r.get("revision") or 0),
    )
    surplus = len(history) - limit
    return [
        Delete(CONTROLLER_REVISIONS, namespace_of(view.sts), name_of(r), uid=uid_of(r))
        for r in history[: max(surplus, 0)]
    ]


def _pods_actions(
    view: StatefulSetView, current_rev: str, update_rev: str, now: datetime
) -> list[Action]:
    sts = view.sts
    name, ns = name_of(sts), namespace_of(sts)
    spec = _spec(sts)
    monotonic = (spec.get("podManagementPolicy") or "OrderedReady") != "Parallel"
    min_ready = int(spec.get("minReadySeconds") or 0)
    kind, partition, max_unavailable = _strategy(sts)
    start = _start_ordinal(sts)
    replicas = replicas_of(sts)
    wanted = range(start, start + replicas)
    condemned = sorted((o for o in view.pods if o not in wanted), reverse=True)
    actions: list[Action] = []
    ref = object_ref(sts)

    def create(ordinal: int) -> None:
        for claim in new_claims(sts, ordinal, view.claims):
            actions.append(Create(PVCS, ns, claim))
            actions.append(
                Event(
                    ref,
                    "Normal",
                    "SuccessfulCreate",
                    f"create Claim {name_of(claim)} Pod {name}-{ordinal} "
                    f"in StatefulSet {name} success",
                    SOURCE,
                )
            )
        use_current = kind == "RollingUpdate" and ordinal < start + partition
        rev = current_rev if use_current else update_rev
        pod = new_pod(sts, _template_for(view, rev), ordinal, rev)
        actions.append(Create(PODS, ns, pod))
        actions.append(
            Event(
                ref,
                "Normal",
                "SuccessfulCreate",
                f"create Pod {name}-{ordinal} in StatefulSet {name} successful",
                SOURCE,
            )
        )

    def delete(pod: Obj) -> None:
        actions.append(Delete(PODS, ns, name_of(pod), uid=uid_of(pod)))
        actions.append(
            Event(
                ref,
                "Normal",
                "SuccessfulDelete",
                f"delete Pod {name_of(pod)} in StatefulSet {name} successful",
                SOURCE,
            )
        )

    for ordinal in wanted:
        pod = view.pods.get(ordinal)
        if pod is None:
            create(ordinal)
            if monotonic:
                return actions
            continue
        if pod_phase(pod) in ("Failed", "Succeeded") and not is_terminating(pod):
            delete(pod)
            if monotonic:
                return actions
            continue
        if pod_phase(pod) == "Pending" and not is_terminating(pod):
            for claim in new_claims(sts, ordinal, view.claims):
                actions.append(Create(PVCS, ns, claim))
        if monotonic and not _healthy(pod, min_ready, now):
            return actions

    first_unhealthy = next(
        (
            o
            for o in [*wanted, *sorted(condemned)]
            if o in view.pods and not _healthy(view.pods[o], min_ready, now)
        ),
        None,
    )
    for ordinal in condemned:
        pod = view.pods[ordinal]
        if is_terminating(pod):
            if monotonic:
                return actions
            continue
        if monotonic and first_unhealthy is not None and first_unhealthy != ordinal:
            return actions
        delete(pod)
        if monotonic:
            return actions

    _, when_scaled = _retention(sts)
    if when_scaled == "Delete":
        for claim in view.claims.values():
            ordinal = _claim_ordinal(sts, name_of(claim))
            if (
                ordinal is not None
                and ordinal not in wanted
                and ordinal not in view.pods
                and not is_terminating(claim)
            ):
                actions.append(Delete(PVCS, ns, name_of(claim), uid=uid_of(claim)))

    if kind != "RollingUpdate" or any(o not in view.pods for o in wanted):
        return actions
    limit = max(1, scaled_int_or_percent(max_unavailable, replicas, round_up=False))
    unavailable = sum(1 for o in wanted if not _healthy(view.pods[o], min_ready, now))
    budget = limit - unavailable
    for ordinal in reversed(wanted):
        if budget <= 0 or ordinal < start + partition:
            break
        pod = view.pods[ordinal]
        if _revision(pod) != update_rev and not is_terminating(pod):
            delete(pod)
            budget -= 1
    return actions


def _claim_ordinal(sts: Obj, claim: str) -> int | None:
    for template in _spec(sts).get("volumeClaimTemplates") or []:
        prefix = f"{(template.get('metadata') or {}).get('name', '')}-{name_of(sts)}-"
        if claim.startswith(prefix) and claim[len(prefix) :].isdigit():
            return int(claim[len(prefix) :])
    return None


def _status_patch(
    view: StatefulSetView, current_rev: str, update_rev: str, now: datetime
) -> Patch | None:
    """The new status, or None when nothing changed (a no-op write would wake us again)."""
    sts = view.sts
    min_ready = int(_spec(sts).get("minReadySeconds") or 0)
    kind, _, _ = _strategy(sts)
    pods = list(view.pods.values())
    ready = [p for p in pods if pod_phase(p) == "Running" and is_pod_ready(p)]
    live = [p for p in pods if not is_terminating(p)]
    status: dict[str, Any] = {
        "observedGeneration": meta(sts).get("generation", 1),
        "replicas": len(pods),
        "readyReplicas": len(ready),
        "availableReplicas": sum(1 for p in ready if is_pod_available(p, min_ready, now)),
        "currentReplicas": sum(1 for p in live if _revision(p) == current_rev),
        "updatedReplicas": sum(1 for p in live if _revision(p) == update_rev),
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": int((sts.get("status") or {}).get("collisionCount") or 0),
    }
    if (
        kind == "RollingUpdate"
        and status["updatedReplicas"] == status["replicas"]
        and status["readyReplicas"] == status["replicas"]
    ):
        status["currentRevision"] = update_rev
        status["currentReplicas"] = status["updatedReplicas"]
    old = sts.get("status") or {}
    if all(old.get(k) == v for k, v in status.items()):
        return None
    return Patch(STATEFULSETS, namespace_of(sts), name_of(sts), {"status": status}, "status")
