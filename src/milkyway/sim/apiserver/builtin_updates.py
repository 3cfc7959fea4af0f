"""What an update of a built-in object may not change, as the real server enforces.

Controllers written against a real cluster learn these rules the hard way (a
StatefulSet's ``volumeClaimTemplates`` cannot be edited, a Deployment's selector is
fixed, a running pod only takes new images), so the simulator rejects the same updates
with the same causes. Only writes of the main resource are checked; ``status`` and
``scale`` writes are the caller's to route elsewhere. :func:`carry_over` first copies what
the server allocated (a Service's cluster IPs) when a replacement leaves it out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.json_values import as_array, as_object

_POD_UPDATE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
_STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
_STATEFULSET_UPDATE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
    "forbidden"
)
_PVC_UPDATE = (
    "spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)
_IMMUTABLE = "field is immutable"


def carry_over(group: str, kind: str, old: dict, new: dict) -> None:
    """Copy server-allocated values the replacement left out (mutates ``new``)."""
    if (group, kind) != ("", "Service"):
        return
    before, after = as_object(old.get("spec")), new.get("spec")
    if not isinstance(after, dict):
        return
    for key in ("clusterIP", "clusterIPs"):
        if key in before and not after.get(key):
            after[key] = copy.deepcopy(before[key])


def check_update(new: dict, old: dict, group: str, kind: str) -> list[Cause]:
    """Causes why replacing ``old`` by ``new`` is not allowed (empty when it is)."""
    rule = _RULES.get((group, kind))
    return rule(new, old) if rule is not None else []


def _pod(new: dict, old: dict) -> list[Cause]:
    before, after = as_object(old.get("spec")), as_object(new.get("spec"))
    if _without_mutable_pod_fields(after, before) == _without_mutable_pod_fields(before, before):
        return []
    return [fe.forbidden("spec", _POD_UPDATE)]


def _without_mutable_pod_fields(spec: dict, reference: dict) -> dict:
    """The pod spec with the fields an update may change set to ``reference``'s values."""
    out = dict(spec)
    for key in ("containers", "initContainers"):
        images = [as_object(c).get("image") for c in as_array(reference.get(key))]
        containers = [dict(as_object(c)) for c in as_array(spec.get(key))]
        if len(containers) == len(images):
            for container, image in zip(containers, images, strict=True):
                container["image"] = image
        out[key] = containers
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        out[key] = reference.get(key)
    old_tolerations = as_array(reference.get("tolerations"))
    new_tolerations = as_array(spec.get("tolerations"))
    if new_tolerations[: len(old_tolerations)] == old_tolerations:
        out["tolerations"] = old_tolerations
    gates = as_array(spec.get("schedulingGates"))
    if all(g in as_array(reference.get("schedulingGates")) for g in gates):
        out["schedulingGates"] = as_array(reference.get("schedulingGates"))
    return {k: v for k, v in out.items() if v not in (None, [])}


def _statefulset(new: dict, old: dict) -> list[Cause]:
    before, after = as_object(old.get("spec")), as_object(new.get("spec"))
    fixed_before = {k: v for k, v in before.items() if k not in _STATEFULSET_MUTABLE}
    fixed_after = {k: v for k, v in after.items() if k not in _STATEFULSET_MUTABLE}
    return [] if fixed_before == fixed_after else [fe.forbidden("spec", _STATEFULSET_UPDATE)]


def _selector_fixed(new: dict, old: dict) -> list[Cause]:
    before = as_object(old.get("spec")).get("selector")
    after = as_object(new.get("spec")).get("selector")
    if before == after:
        return []
    return [Cause(fe.INVALID, f'Invalid value: "object": {_IMMUTABLE}', "spec.selector")]


def _service(new: dict, old: dict) -> list[Cause]:
    before, after = as_object(old.get("spec")), as_object(new.get("spec"))
    causes: list[Cause] = []
    old_ip, new_ip = before.get("clusterIP"), after.get("clusterIP")
    changing_type = "ExternalName" in (before.get("type"), after.get("type"))
    if old_ip and new_ip != old_ip and not changing_type:
        causes.append(fe.invalid("spec.clusterIPs[0]", new_ip or "", "may not change once set"))
    return causes


def _claim(new: dict, old: dict) -> list[Cause]:
    mutable = ("resources", "volumeAttributesClassName", "volumeName")
    before = {k: v for k, v in as_object(old.get("spec")).items() if k not in mutable}
    after = {k: v for k, v in as_object(new.get("spec")).items() if k not in mutable}
    causes = [] if before == after else [fe.forbidden("spec", _PVC_UPDATE)]
    old_volume = as_object(old.get("spec")).get("volumeName")
    new_volume = as_object(new.get("spec")).get("volumeName")
    if old_volume and new_volume != old_volume:
        causes.append(fe.forbidden("spec", _PVC_UPDATE))
    return causes[:1]


def _immutable_data(new: dict, old: dict) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes: list[Cause] = []
    if not new.get("immutable"):
        causes.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in ("data", "binaryData", "stringData"):
        if key != "stringData" and new.get(key) != old.get(key):
            causes.append(fe.forbidden(key, "field is immutable when `immutable` is set"))
    return causes


def _role_ref(new: dict, old: dict) -> list[Cause]:
    if new.get("roleRef") == old.get("roleRef"):
        return []
    return [Cause(fe.INVALID, 'Invalid value: "object": cannot change roleRef', "roleRef")]


def _crd(new: dict, old: dict) -> list[Cause]:
    before, after = as_object(old.get("spec")), as_object(new.get("spec"))
    causes: list[Cause] = []
    for key in ("group", "scope"):
        if before.get(key) != after.get(key):
            causes.append(fe.invalid(f"spec.{key}", after.get(key, ""), _IMMUTABLE))
    return causes


_RULES: dict[tuple[str, str], Callable[[dict, dict], list[Cause]]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _claim,
    ("", "ConfigMap"): _immutable_data,
    ("", "Secret"): _immutable_data,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "Deployment"): _selector_fixed,
    ("apps", "ReplicaSet"): _selector_fixed,
    ("apps", "DaemonSet"): _selector_fixed,
    ("rbac.authorization.k8s.io", "RoleBinding"): _role_ref,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _role_ref,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
