"""The Deployment controller's pure core: Deployment -> ReplicaSets, one per pod template.

A rolling update scales the new ReplicaSet up only while the total stays within
``replicas + maxSurge`` and scales old ones down only while at least
``replicas - maxUnavailable`` pods stay available, counting availability from the pods
themselves rather than from possibly stale ReplicaSet statuses, so the bounds hold at
every instant. ``Recreate`` empties old ReplicaSets before the new one starts. Old
ReplicaSets beyond ``revisionHistoryLimit`` are deleted; each carries its
``deployment.kubernetes.io/revision`` so ``kubectl rollout history`` works.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from milkyway.sim.controllers.actions import (
    DEPLOYMENTS,
    REPLICASETS,
    Action,
    Create,
    Delete,
    Event,
    Patch,
)
from milkyway.sim.controllers.objects import (
    Obj,
    annotations_of,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    is_terminating,
    meta,
    name_of,
    namespace_of,
    now_rfc3339,
    object_ref,
    replicas_of,
    scaled_int_or_percent,
    template_hash,
    uid_of,
)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
SOURCE = "deployment-controller"


@dataclass(frozen=True)
class DeploymentView:
    deployment: Obj
    replica_sets: Sequence[Obj]
    """ReplicaSets controlled by the Deployment."""
    pods: Mapping[str, Sequence[Obj]]
    """Pods by the uid of the ReplicaSet that controls them."""


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    replicas = replicas_of(deployment)
    surge = scaled_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_int_or_percent(
        rolling.get("maxUnavailable", "25%"), replicas, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _revision(rs: Obj) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def _new_rs(deployment: Obj, pod_hash: str, revision: int, replicas: int) -> Obj:
    spec = deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    surge, _ = surge_and_unavailable(deployment)
    rs_spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name_of(deployment)}-{pod_hash}",
            "namespace": namespace_of(deployment),
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                REVISION: str(revision),
                "deployment.kubernetes.io/desired-replicas": str(replicas_of(deployment)),
                "deployment.kubernetes.io/max-replicas": str(replicas_of(deployment) + surge),
            },
            "ownerReferences": [controller_ref(deployment)],
        },
        "spec": rs_spec,
    }


def reconcile_deployment(view: DeploymentView, now: datetime) -> list[Action]:
    deployment = view.deployment
    if is_terminating(deployment):
        return []
    ns = namespace_of(deployment)
    spec = deployment.get("spec") or {}
    pod_hash = template_hash(spec.get("template") or {})
    new = next(
        (rs for rs in view.replica_sets if meta(rs).get("labels", {}).get(HASH_LABEL) == pod_hash),
        None,
    )
    olds = sorted(
        (rs for rs in view.replica_sets if rs is not new),
        key=lambda rs: (meta(rs).get("creationTimestamp", ""), name_of(rs)),
    )
    replicas = replicas_of(deployment)
    min_ready = int(spec.get("minReadySeconds") or 0)
    strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
    surge, max_unavailable = surge_and_unavailable(deployment)
    ref = object_ref(deployment)
    actions: list[Action] = []
    scales: dict[str, int] = {name_of(rs): replicas_of(rs) for rs in view.replica_sets}
    max_rev = max((_revision(rs) for rs in olds), default=0)

    def active(rs: Obj) -> list[Obj]:
        return [p for p in view.pods.get(uid_of(rs), []) if is_pod_active(p)]

    def available(rs: Obj) -> int:
        return sum(1 for p in active(rs) if is_pod_available(p, min_ready, now))

    def scale(rs: Obj, to: int) -> None:
        if scales[name_of(rs)] == to:
            return
        verb = "up" if to > scales[name_of(rs)] else "down"
        scales[name_of(rs)] = to
        actions.append(
            Patch(
                REPLICASETS,
                ns,
                name_of(rs),
                {
                    "spec": {"replicas": to},
                    "metadata": {
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                        }
                    },
                },
            )
        )
        actions.append(
            Event(
                ref,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {name_of(rs)} from {replicas_of(rs)} to {to}",
                SOURCE,
            )
        )

    if spec.get("paused"):
        return _status(view, new, now, actions)

    if new is None:
        if strategy == "Recreate":
            initial = (
                replicas
                if not any(active(rs) for rs in olds)
                and all(scales[name_of(rs)] == 0 for rs in olds)
                else 0
            )
        else:
            total = sum(max(scales[name_of(rs)], len(active(rs))) for rs in olds)
            initial = max(0, min(replicas, replicas + surge - total))
        created = _new_rs(deployment, pod_hash, max_rev + 1, initial)
        actions.append(Create(REPLICASETS, ns, created))
        actions.append(
            Event(
                ref,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {name_of(created)} from 0 to {initial}",
                SOURCE,
            )
        )
    elif _revision(new) <= max_rev:
        actions.append(
            Patch(
                REPLICASETS,
                ns,
                name_of(new),
                {"metadata": {"annotations": {REVISION: str(max_rev + 1)}}},
            )
        )

    if strategy == "Recreate":
        for rs in olds:
            scale(rs, 0)
        if new is not None and not any(active(rs) for rs in olds):
            scale(new, replicas)
    elif new is not None:
        new_replicas = scales[name_of(new)]
        if new_replicas > replicas:
            scale(new, replicas)
        elif new_replicas < replicas:
            room = (
                replicas
                + surge
                - sum(max(scales[name_of(rs)], len(active(rs))) for rs in view.replica_sets)
            )
            if room > 0:
                scale(new, new_replicas + min(room, replicas - new_replicas))
    if strategy != "Recreate":
        _scale_down_olds(
            olds,
            [*olds, *([new] if new is not None else [])],
            replicas - max_unavailable,
            scales,
            active,
            available,
            scale,
        )

    actions += _cleanup(deployment, olds, scales, active)
    return _status(view, new, now, actions)


def _scale_down_olds(
    olds: Sequence[Obj],
    all_rs: Sequence[Obj],
    min_available: int,
    scales: Mapping[str, int],
    active: Callable[[Obj], list[Obj]],
    available: Callable[[Obj], int],
    scale: Callable[[Obj, int], None],
) -> None:
    """Remove old pods without ever going below ``min_available`` available pods.

    A ReplicaSet deletes its unavailable pods first, so shrinking one by ``k`` costs
    ``max(0, k - unavailable)`` available pods; deletions already asked for (spec below
    the active count) are charged before new ones.
    """
    budget = sum(available(rs) for rs in all_rs) - min_available
    spare: dict[str, int] = {}
    for rs in all_rs:
        pods = len(active(rs))
        unavailable = pods - available(rs)
        pending = max(0, pods - scales[name_of(rs)])
        budget -= max(0, pending - unavailable)
        spare[name_of(rs)] = max(0, unavailable - pending)
    for rs in olds:
        current = scales[name_of(rs)]
        if current == 0:
            continue
        free = min(current, spare[name_of(rs)])
        drop = min(current, free + max(0, budget))
        budget -= drop - free
        if drop > 0:
            scale(rs, current - drop)


def _cleanup(
    deployment: Obj, olds: Sequence[Obj], scales: Mapping[str, int], active
) -> list[Action]:  # type: ignore[no-untyped-def]
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    idle = [rs for rs in olds if scales[name_of(rs)] == 0 and not active(rs)]
    idle.sort(key=_revision)
    return [
        Delete(REPLICASETS, namespace_of(rs), name_of(rs), uid=uid_of(rs))
        for rs in idle[: max(0, len(idle) - limit)]
    ]


def _status(
    view: DeploymentView, new: Obj | None, now: datetime, actions: list[Action]
) -> list[Action]:
    deployment = view.deployment
    spec = deployment.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    replicas = replicas_of(deployment)
    _, max_unavailable = surge_and_unavailable(deployment)
    pods = [
        p for rs in view.replica_sets for p in view.pods.get(uid_of(rs), []) if is_pod_active(p)
    ]
    updated = [p for p in view.pods.get(uid_of(new), []) if is_pod_active(p)] if new else []
    available = sum(1 for p in pods if is_pod_available(p, min_ready, now))
    complete = (
        new is not None
        and len(updated) == replicas
        and len(pods) == replicas
        and sum(1 for p in updated if is_pod_available(p, min_ready, now)) == replicas
    )
    old_status = deployment.get("status") or {}
    stamp = now_rfc3339(now)

    def condition(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
        for cond in old_status.get("conditions") or []:
            if (
                cond.get("type") == type_
                and cond.get("status") == status
                and cond.get("reason") == reason
            ):
                return cond
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
        }

    new_name = name_of(new) if new else f"{name_of(deployment)}"
    conditions = [
        condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
        if available >= replicas - max_unavailable
        else condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        ),
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{new_name}" has successfully progressed.',
        )
        if complete
        else condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{new_name}" is progressing.'
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": meta(deployment).get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": len(updated),
        "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
        "availableReplicas": available,
        "unavailableReplicas": max(0, replicas - available),
        "conditions": conditions,
    }
    if any(old_status.get(k) != v for k, v in status.items()):
        actions.append(
            Patch(
                DEPLOYMENTS,
                namespace_of(deployment),
                name_of(deployment),
                {"status": status},
                "status",
            )
        )
    if new is not None and annotations_of(deployment).get(REVISION) != annotations_of(new).get(
        REVISION
    ):
        actions.append(
            Patch(
                DEPLOYMENTS,
                namespace_of(deployment),
                name_of(deployment),
                {"metadata": {"annotations": {REVISION: annotations_of(new).get(REVISION, "1")}}},
            )
        )
    return actions
