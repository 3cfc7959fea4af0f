"""The namespace of an Application in a member cluster: created by the first apply when
missing (and marked so), removed after the last decommission only if Milkyway created it
and nothing is left in it. A namespace that existed before is never deleted."""

from __future__ import annotations

from typing import Any

from lightkube.resources.apps_v1 import Deployment, ReplicaSet, StatefulSet
from lightkube.resources.core_v1 import (
    ConfigMap,
    Namespace,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
)
from lightkube.resources.policy_v1 import PodDisruptionBudget

from milkyway.flows.tasks import TaskContext, task
from milkyway.kube.agent_contract import AGENT_KEYS_SECRET, AGENT_SIGNING_SECRET
from milkyway.operator.tasks.common import Params, delete, exists, list_objects

CREATED_BY = "milkyway.ebay.com/created-by"
"""Annotation on a namespace Milkyway created: only such a namespace is ever deleted."""
CREATOR = "milkyway-operator"
MANAGED_BY = "app.kubernetes.io/managed-by"

_CONTENTS = (
    Pod,
    PersistentVolumeClaim,
    StatefulSet,
    Deployment,
    ReplicaSet,
    Service,
    ConfigMap,
    Secret,
    PodDisruptionBudget,
)
_CLUSTER_DEFAULTS = {
    ("ConfigMap", "kube-root-ca.crt"),
    ("Service", "kubernetes"),
}
"""Objects a cluster puts in every namespace by itself: they do not keep one in use."""
_AGENT_KEYS = (AGENT_SIGNING_SECRET, AGENT_KEYS_SECRET)
"""The namespace's agent signing keys: Milkyway's own, published for the members of
every Application there, and removed with the last of them."""


def created_namespace(name: str) -> dict[str, Any]:
    """The manifest of a namespace Milkyway creates for an Application's objects."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: "milkyway"},
            "annotations": {CREATED_BY: CREATOR},
        },
    }


class ReleaseParams(Params):
    cluster: str
    namespace: str


@task("milkyway.release-namespace")
async def release_namespace(params: ReleaseParams, ctx: TaskContext) -> dict[str, Any]:
    """Remove the namespace's agent keys, then delete the namespace if Milkyway created
    it and it holds nothing any more (no object of another Application, nor anything
    someone else put there)."""
    found = await exists(ctx, params.cluster, Namespace, params.namespace, None)
    if found is None:
        return {"deleted": False, "reason": "already gone"}
    for secret in _AGENT_KEYS:
        await delete(ctx, params.cluster, Secret, secret, params.namespace)
    annotations = (found.get("metadata") or {}).get("annotations") or {}
    if annotations.get(CREATED_BY) != CREATOR:
        return {"deleted": False, "reason": "not created by Milkyway: kept"}
    left: list[str] = []
    for resource in _CONTENTS:
        for obj in await list_objects(ctx, params.cluster, resource, params.namespace, {}):
            name = obj["metadata"]["name"]
            kind = resource.__name__
            if (kind, name) in _CLUSTER_DEFAULTS:
                continue
            if kind == "Secret" and (obj.get("type") or "").startswith("kubernetes.io/"):
                continue
            left.append(f"{kind}/{name}")
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        return {"deleted": False, "reason": f"still in use: {shown}"}
    await delete(ctx, params.cluster, Namespace, params.namespace, None)
    return {"deleted": True}


__all__ = ["CREATED_BY", "created_namespace", "release_namespace"]
