"""What the member caches keep of each object: the fields something reads, no more.

A member cache holds every object Milkyway owns in a cluster (at 1,000 Applications,
30,000 pods, their claims and volumes, the StatefulSets...). Most of an object's bytes
are fields nothing reads from the cache: a pod's containers (images, commands,
environment, probes, mounts), its status's container states; a StatefulSet's pod
template; a ConfigMap's files. The tasks that need those read the object from the
cluster when they run. Keeping only what the readers use cuts the cache to a fraction,
and a change of only dropped fields no longer wakes an Application up (nothing reading
the cache could decide differently).

The readers, and what each reads of the cache (any reader added must be added here):

* the observation of a zone (:mod:`milkyway.operator.observe`): every object's
  ``apiVersion``, ``kind`` and ``metadata`` (names, labels, annotations such as the
  config hash and fresh-volume mark, ``uid``, ``creationTimestamp``,
  ``deletionTimestamp``, ``ownerReferences``); a pod's ``spec.nodeName``, its claim
  volumes (``spec.volumes[].persistentVolumeClaim``), ``status.phase``,
  ``status.conditions`` (Ready and DiskAlert: type, status, reason, transition time)
  and each container's ``restartCount``; a claim's ``spec.volumeName`` and
  ``status.phase``; a volume's ``spec.nodeAffinity`` and ``status.phase``; a Node's
  ``status.conditions``;
* the planner's diff (:mod:`milkyway.operator.planner.diff`): a workload's
  ``spec.replicas`` and ``spec.template.metadata`` (config hash and version), a
  ConfigMap's annotations, and which objects exist;
* the disk watch (:mod:`milkyway.operator.disk_watch`): a pod's container names (does
  it have an agent), phase and conditions;
* the member cache itself: a pod's node, a claim's volume, a Node's Ready condition, a
  volume's phase.

Everything else of ``spec`` and ``status`` is dropped, and so is ``metadata``'s
``managedFields``; what is kept is the object's own data, not a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from milkyway.kube.resources import plain

Object = dict[str, Any]


def _pick(source: Any, *fields: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {f: source[f] for f in fields if source.get(f) is not None}


def _pod(obj: Object) -> Object:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kept_spec = _pick(spec, "nodeName")
    kept_spec["containers"] = [
        {"name": c.get("name")} for c in spec.get("containers") or [] if isinstance(c, dict)
    ]
    claims = [
        _pick(v, "name", "persistentVolumeClaim")
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and v.get("persistentVolumeClaim")
    ]
    if claims:
        kept_spec["volumes"] = claims
    kept_status = _pick(status, "phase", "conditions")
    if status.get("containerStatuses"):
        kept_status["containerStatuses"] = [
            _pick(c, "name", "ready", "restartCount") for c in status["containerStatuses"]
        ]
    return {**_frame(obj), "spec": kept_spec, "status": kept_status}


def _workload(obj: Object) -> Object:
    spec = obj.get("spec") or {}
    kept = _pick(spec, "replicas")
    template = spec.get("template")
    if isinstance(template, dict) and template.get("metadata") is not None:
        kept["template"] = {"metadata": template["metadata"]}
    return {**_frame(obj), "spec": kept, "status": obj.get("status") or {}}


def _claim(obj: Object) -> Object:
    return {
        **_frame(obj),
        "spec": _pick(obj.get("spec"), "volumeName"),
        "status": _pick(obj.get("status"), "phase"),
    }


def _volume(obj: Object) -> Object:
    return {
        **_frame(obj),
        "spec": _pick(obj.get("spec"), "nodeAffinity"),
        "status": _pick(obj.get("status"), "phase"),
    }


def _node(obj: Object) -> Object:
    return {**_frame(obj), "status": _pick(obj.get("status"), "conditions")}


def _metadata_only(obj: Object) -> Object:
    return _frame(obj)


def _frame(obj: Object) -> Object:
    return {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}


_BY_KIND: dict[str, Callable[[Object], Object]] = {
    "Pod": _pod,
    "StatefulSet": _workload,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "PersistentVolumeClaim": _claim,
    "PersistentVolume": _volume,
    "Node": _node,
    "ConfigMap": _metadata_only,
    "Service": _metadata_only,
    "PodDisruptionBudget": _metadata_only,
}


def project(obj: Any) -> Object:
    """What a member cache keeps of ``obj`` (a lightkube object or its dict form): see the
    module docstring; a kind not listed is kept whole, without ``managedFields``."""
    data = plain(obj)
    trim = _BY_KIND.get(data.get("kind", ""))
    return trim(data) if trim is not None else data
