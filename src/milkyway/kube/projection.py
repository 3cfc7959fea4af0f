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
  ``deletionTimestamp``, the kind and name of ``ownerReferences``); a pod's
  ``spec.nodeName``, its claim volumes (``spec.volumes[].persistentVolumeClaim``),
  ``status.phase``, its Ready and DiskAlert conditions (type, status, reason,
  transition time) and each container's ``restartCount``; a claim's ``spec.volumeName`` and
  ``status.phase``; a volume's ``spec.nodeAffinity`` and ``status.phase``; a Node's
  Ready condition;
* the planner's diff (:mod:`milkyway.operator.planner.diff`): a workload's
  ``spec.replicas`` and ``spec.template.metadata`` (config hash and version), a
  ConfigMap's annotations, and which objects exist;
* the disk watch (:mod:`milkyway.operator.disk_watch`): a pod's container names (does
  it have an agent), phase and conditions;
* the health checks (:mod:`milkyway.operator.health.checks`): a pod's name, labels
  (version), annotations (config hash), ``deletionTimestamp``, ``status.phase``, Ready
  condition, and each container's ``restartCount`` and the ``reason`` of its waiting or
  terminated state;
* the member cache itself: a pod's node, a claim's volume, a Node's Ready condition, a
  volume's phase.

Everything else of ``spec`` and ``status`` is dropped, and so is ``metadata``'s
``managedFields``. The strings that repeat across objects (label keys and values,
annotation keys, owner kinds, condition types, statuses and times, creation times,
node names, phases) are interned: every object decoded from JSON carries its own copy
of each, and 30,000 pods with a dozen labels each are otherwise 360,000 strings saying
the same few things.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.kube.resources import plain

Object = dict[str, Any]

POD_CONDITIONS = frozenset({"Ready", DISK_ALERT_CONDITION})
"""The pod conditions something reads from the cache (readiness, disk alerts)."""


SHORT = 128
"""Longer strings are not interned (few repeat, and a long unique one is not worth an
entry in the interpreter's table)."""


def _pick(source: Any, *fields: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {f: _shared(source[f]) for f in fields if source.get(f) is not None}


def _shared(value: Any) -> Any:
    """``value`` itself, or the one interned copy of it if it is a short string."""
    if type(value) is str and len(value) <= SHORT:
        return sys.intern(value)
    return value


def _shared_map(values: Any) -> Any:
    if not isinstance(values, Mapping):
        return values
    return {sys.intern(k): _shared(v) for k, v in values.items()}


def _shared_items(items: Any, *fields: str) -> Any:
    """A list of dicts (conditions, owner references) with the ``fields`` interned."""
    if not isinstance(items, list):
        return items
    return [
        {k: _shared(v) if k in fields else v for k, v in item.items()}
        if isinstance(item, dict)
        else item
        for item in items
    ]


def _pod(obj: Object) -> Object:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kept_spec = _pick(spec, "nodeName")
    kept_spec["containers"] = [
        {"name": _shared(c.get("name"))}
        for c in spec.get("containers") or []
        if isinstance(c, dict)
    ]
    claims = [
        _pick(v, "name", "persistentVolumeClaim")
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and v.get("persistentVolumeClaim")
    ]
    if claims:
        kept_spec["volumes"] = claims
    kept_status = _pick(status, "phase")
    if status.get("conditions") is not None:
        kept_status["conditions"] = _conditions(status["conditions"], POD_CONDITIONS)
    if status.get("containerStatuses"):
        kept_status["containerStatuses"] = [
            {**_pick(c, "name", "restartCount"), **_state_reason(c)}
            for c in status["containerStatuses"]
            if isinstance(c, dict)
        ]
    return {**_frame(obj), "spec": kept_spec, "status": kept_status}


def _state_reason(container: Object) -> Object:
    """Of a container's state, only why it waits or ended (``CrashLoopBackOff``,
    ``OOMKilled``): what a health finding says of a member that is not Ready."""
    state = container.get("state")
    if not isinstance(state, dict):
        return {}
    kept = {
        key: {"reason": _shared(value["reason"])}
        for key in ("waiting", "terminated")
        if isinstance(value := state.get(key), dict) and value.get("reason")
    }
    return {"state": kept} if kept else {}


def _conditions(conditions: Any, kept: Collection[str]) -> Any:
    """The conditions of the ``kept`` types, their repeated strings interned."""
    if not isinstance(conditions, list):
        return conditions
    return _shared_items(
        [c for c in conditions if isinstance(c, dict) and c.get("type") in kept],
        "type",
        "status",
        "reason",
        "lastTransitionTime",
    )


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
    conditions = (obj.get("status") or {}).get("conditions")
    status = {} if conditions is None else {"conditions": _conditions(conditions, {"Ready"})}
    return {**_frame(obj), "status": status}


def _metadata_only(obj: Object) -> Object:
    return _frame(obj)


def _frame(obj: Object) -> Object:
    """``apiVersion``, ``kind`` and ``metadata``, its repeated strings interned."""
    kept = {k: _shared(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata = {k: v for k, v in metadata.items() if k != "managedFields"}
        for field in ("namespace", "generateName", "creationTimestamp"):
            if field in metadata:
                metadata[field] = _shared(metadata[field])
        for field in ("labels", "annotations"):
            if field in metadata:
                metadata[field] = _shared_map(metadata[field])
        if "ownerReferences" in metadata:
            metadata["ownerReferences"] = [
                _pick(ref, "apiVersion", "kind", "name")
                for ref in metadata["ownerReferences"] or []
            ]
    if metadata is not None:
        kept["metadata"] = metadata
    return kept


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
