"""Which fields of a built-in object an update may change, as the real API server decides.

Clients and controllers depend on these refusals: a pod's spec is fixed except images and
a few scheduling fields, a workload's selector never changes, a StatefulSet accepts only
some spec changes, an immutable ConfigMap or Secret keeps its data. Also carries over
what the server allocated (a Service's cluster IPs) when a replacement omits it.
"""

from __future__ import annotations

import copy
from typing import Any

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.errors import Cause

Obj = dict[str, Any]

_POD_MUTABLE = (
    "spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, "
    "spec.tolerations (only additions to existing tolerations), "
    "spec.terminationGracePeriodSeconds (allow it to be set to 1 if it was previously negative)"
)
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def carry_over(group: str, kind: str, old: Obj, new: Obj) -> None:
    """Copy server-allocated values the replacement left out (mutates ``new``)."""
    if (group, kind) != ("", "Service"):
        return
    old_spec, new_spec = old.get("spec") or {}, new.get("spec")
    if not isinstance(new_spec, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if key in old_spec and not new_spec.get(key):
            new_spec[key] = copy.deepcopy(old_spec[key])


def check_update(group: str, kind: str, old: Obj, new: Obj) -> list[Cause]:
    """Causes why ``new`` may not replace ``old`` (empty when the update is allowed)."""
    check = _CHECKS.get((group, kind))
    return check(old, new) if check else []


def _pod(old: Obj, new: Obj) -> list[Cause]:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if not isinstance(new_spec, dict):
        return []
    allowed = copy.deepcopy(old_spec)
    for key in ("containers", "initContainers"):
        old_list, new_list = allowed.get(key) or [], new_spec.get(key) or []
        if len(old_list) == len(new_list):
            for before, after in zip(old_list, new_list, strict=True):
                if isinstance(before, dict) and isinstance(after, dict) and "image" in after:
                    before["image"] = after["image"]
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations"):
        if key in new_spec:
            allowed[key] = new_spec[key]
        else:
            allowed.pop(key, None)
    if allowed == new_spec:
        return []
    return [fe.forbidden("spec", f"pod updates may not change fields other than {_POD_MUTABLE}")]


def _selector(old: Obj, new: Obj) -> list[Cause]:
    before = (old.get("spec") or {}).get("selector")
    after = (new.get("spec") or {}).get("selector") if isinstance(new.get("spec"), dict) else None
    if before != after:
        return [fe.invalid("spec.selector", after, "field is immutable")]
    return []


def _statefulset(old: Obj, new: Obj) -> list[Cause]:
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if not isinstance(new_spec, dict):
        return []
    keys = (old_spec.keys() | new_spec.keys()) - set(_STS_MUTABLE)
    if any(old_spec.get(k) != new_spec.get(k) for k in keys):
        listed = ", ".join(f"'{k}'" for k in _STS_MUTABLE[:-1])
        return [
            fe.forbidden(
                "spec",
                f"updates to statefulset spec for fields other than {listed} and "
                f"'{_STS_MUTABLE[-1]}' are forbidden",
            )
        ]
    return []


def _immutable_data(old: Obj, new: Obj) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes = []
    if not new.get("immutable"):
        causes.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in ("data", "binaryData", "stringData"):
        if old.get(key) != new.get(key) and not (key == "stringData" and key not in new):
            causes.append(fe.forbidden(key, "field is immutable when `immutable` is set"))
    return causes


_CHECKS = {
    ("", "Pod"): _pod,
    ("apps", "StatefulSet"): lambda old, new: _selector(old, new) + _statefulset(old, new),
    ("apps", "Deployment"): _selector,
    ("apps", "ReplicaSet"): _selector,
    ("apps", "DaemonSet"): _selector,
    ("", "ConfigMap"): _immutable_data,
    ("", "Secret"): _immutable_data,
}
