"""The semantic rules of built-in kinds that a schema cannot express.

These are the checks of the real API server that clients and controllers rely on: name
syntax per kind, label and annotation syntax, one name per container, required pod
containers and images, selectors that match their template's labels, non-negative
replicas, service ports, config keys, claim access modes, RBAC rules. Every check reads
defensively: the schema pass reports wrong types, this pass only skips them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from milkyway.sim.apiserver import batch_kinds, naming
from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.json_values import as_array, as_object
from milkyway.sim.apiserver.quantity import QUANTITY_PATTERN, parse_quantity
from milkyway.sim.apiserver.selectors import label_selector_matches

ANNOTATIONS_MAX_BYTES = 256 * 1024

_RBAC = "rbac.authorization.k8s.io"
_NAMELESS_KINDS = frozenset(
    {
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
        "TokenReview",
        "SelfSubjectReview",
    }
)
_NAME_RULES: dict[tuple[str, str], naming.NameCheck] = {
    ("", "Namespace"): naming.dns1123_label,
    ("", "Service"): naming.dns1035_label,
    (_RBAC, "Role"): naming.path_segment_name,
    (_RBAC, "ClusterRole"): naming.path_segment_name,
    (_RBAC, "RoleBinding"): naming.path_segment_name,
    (_RBAC, "ClusterRoleBinding"): naming.path_segment_name,
}
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_PERCENT_MESSAGE = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def check_semantics(obj: dict, group: str, kind: str) -> list[Cause]:
    causes = check_metadata(obj, group, kind)
    rule = _KIND_RULES.get((group, kind))
    if rule is not None:
        causes.extend(rule(obj))
    return causes


def check_metadata(obj: dict, group: str, kind: str, *, name: bool = True) -> list[Cause]:
    """ObjectMeta rules; ``name=False`` leaves the name to a caller with its own naming rule."""
    meta = as_object(obj.get("metadata"))
    causes: list[Cause] = []
    check_name = name
    name = meta.get("name")
    if check_name and kind not in _NAMELESS_KINDS:
        if not name and not meta.get("generateName"):
            causes.append(fe.required("metadata.name", "name or generateName is required"))
        elif isinstance(name, str) and name:
            check = _NAME_RULES.get((group, kind), naming.dns1123_subdomain)
            causes.extend(fe.invalid("metadata.name", name, p) for p in check(name))
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        causes.extend(
            fe.invalid("metadata.namespace", namespace, p) for p in naming.dns1123_label(namespace)
        )
    labels = as_object(meta.get("labels"))
    for key, value in labels.items():
        causes.extend(fe.invalid("metadata.labels", key, p) for p in naming.qualified_name(key))
        if isinstance(value, str):
            causes.extend(
                fe.invalid("metadata.labels", value, p) for p in naming.label_value(value)
            )
    annotations = as_object(meta.get("annotations"))
    size = 0
    for key, value in annotations.items():
        causes.extend(
            fe.invalid("metadata.annotations", key, p) for p in naming.qualified_name(key.lower())
        )
        size += len(key.encode()) + (len(value.encode()) if isinstance(value, str) else 0)
    if size > ANNOTATIONS_MAX_BYTES:
        causes.append(fe.too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES))
    for i, finalizer in enumerate(as_array(meta.get("finalizers"))):
        if isinstance(finalizer, str):
            causes.extend(
                fe.invalid(f"metadata.finalizers[{i}]", finalizer, p)
                for p in naming.qualified_name(finalizer)
            )
    for i, ref in enumerate(as_array(meta.get("ownerReferences"))):
        for key in ("apiVersion", "kind", "name", "uid"):
            if isinstance(ref, dict) and not ref.get(key):
                causes.append(fe.required(f"metadata.ownerReferences[{i}].{key}"))
    controllers = [
        r for r in as_array(meta.get("ownerReferences")) if as_object(r).get("controller")
    ]
    if len(controllers) > 1:
        causes.append(
            fe.invalid(
                "metadata.ownerReferences",
                controllers[1].get("name", ""),
                "Only one reference can have Controller set to true",
            )
        )
    return causes


def _pod_spec(
    spec: Any, path: str, *, template: bool = False, claim_names: frozenset[str] = frozenset()
) -> list[Cause]:
    """A pod spec's rules; ``claim_names`` are a StatefulSet's claim templates, mountable too."""
    spec = as_object(spec)
    causes: list[Cause] = []
    containers = as_array(spec.get("containers"))
    if not containers:
        causes.append(fe.required(f"{path}.containers"))
    names: set[str] = set()
    volumes = as_array(spec.get("volumes"))
    volume_names: set[str] = set()
    for i, volume in enumerate(volumes):
        vname = as_object(volume).get("name")
        field = f"{path}.volumes[{i}].name"
        if not vname:
            causes.append(fe.required(field))
        elif not isinstance(vname, str):
            continue
        elif vname in volume_names:
            causes.append(fe.duplicate(field, vname))
        else:
            volume_names.add(vname)
            causes.extend(fe.invalid(field, vname, p) for p in naming.dns1123_label(vname))
    for key in ("initContainers", "containers"):
        for i, container in enumerate(as_array(spec.get(key))):
            causes.extend(_container(as_object(container), f"{path}.{key}[{i}]", names))
            causes.extend(
                _volume_mounts(
                    as_object(container), f"{path}.{key}[{i}]", volume_names | claim_names
                )
            )
    restart = spec.get("restartPolicy")
    if template and restart not in (None, "Always"):
        causes.append(fe.not_supported(f"{path}.restartPolicy", restart, ["Always"]))
    elif isinstance(restart, str) and restart not in _RESTART_POLICIES:
        causes.append(fe.not_supported(f"{path}.restartPolicy", restart, _RESTART_POLICIES))
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and grace < 0:
        causes.append(fe.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be >= 0"))
    return causes


def _volume_mounts(container: dict, path: str, volumes: set[str] | frozenset[str]) -> list[Cause]:
    causes: list[Cause] = []
    paths: set[str] = set()
    for i, mount in enumerate(as_array(container.get("volumeMounts"))):
        mount = as_object(mount)
        field = f"{path}.volumeMounts[{i}]"
        name, mount_path = mount.get("name"), mount.get("mountPath")
        if not name:
            causes.append(fe.required(f"{field}.name"))
        elif isinstance(name, str) and name not in volumes:
            causes.append(fe.not_found(f"{field}.name", name))
        if not mount_path:
            causes.append(fe.required(f"{field}.mountPath"))
        elif isinstance(mount_path, str):
            if mount_path in paths:
                causes.append(fe.invalid(f"{field}.mountPath", mount_path, "must be unique"))
            paths.add(mount_path)
    return causes


def _container(container: dict, path: str, names: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    name = container.get("name")
    if not name:
        causes.append(fe.required(f"{path}.name"))
    elif isinstance(name, str):
        if name in names:
            causes.append(fe.duplicate(f"{path}.name", name))
        names.add(name)
        causes.extend(fe.invalid(f"{path}.name", name, p) for p in naming.dns1123_label(name))
    image = container.get("image")
    if not image:
        causes.append(fe.required(f"{path}.image"))
    elif isinstance(image, str) and image != image.strip():
        causes.append(
            fe.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
        )
    policy = container.get("imagePullPolicy")
    if isinstance(policy, str) and policy not in _PULL_POLICIES:
        causes.append(fe.not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES))
    port_names: set[str] = set()
    for i, port in enumerate(as_array(container.get("ports"))):
        port = as_object(port)
        field = f"{path}.ports[{i}]"
        number = port.get("containerPort")
        if number is None:
            causes.append(fe.required(f"{field}.containerPort"))
        elif isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(_port_range(f"{field}.containerPort", number))
        pname = port.get("name")
        if isinstance(pname, str) and pname:
            if pname in port_names:
                causes.append(fe.duplicate(f"{field}.name", pname))
            port_names.add(pname)
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol not in _PROTOCOLS:
            causes.append(fe.not_supported(f"{field}.protocol", protocol, _PROTOCOLS))
    causes.extend(_resources(as_object(container.get("resources")), f"{path}.resources"))
    for i, env in enumerate(as_array(container.get("env"))):
        if not as_object(env).get("name"):
            causes.append(fe.required(f"{path}.env[{i}].name"))
    return causes


def _quantities(values: dict) -> dict[str, Decimal]:
    """Parsed quantities of a resource map; bad ones become causes via ``_bad_quantities``."""
    parsed = {}
    for name, value in values.items():
        if isinstance(value, str | int | float):
            number = parse_quantity(value)
            if number is not None:
                parsed[name] = number
    return parsed


def _bad_quantities(values: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name, value in values.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        number = parse_quantity(value)
        field = f"{path}[{name}]"
        if number is None:
            causes.append(
                fe.invalid(
                    field,
                    value,
                    f"quantities must match the regular expression '{QUANTITY_PATTERN}'",
                )
            )
        elif number < 0:
            causes.append(fe.invalid(field, value, "must be greater than or equal to 0"))
    return causes


def _resources(resources: dict, path: str) -> list[Cause]:
    requests, limits = as_object(resources.get("requests")), as_object(resources.get("limits"))
    causes = _bad_quantities(requests, f"{path}.requests")
    causes.extend(_bad_quantities(limits, f"{path}.limits"))
    parsed_limits = _quantities(limits)
    for name, request in _quantities(requests).items():
        limit = parsed_limits.get(name)
        if limit is not None and request > limit:
            causes.append(
                fe.invalid(
                    f"{path}.requests",
                    str(requests[name]),
                    f"must be less than or equal to {name} limit of {limits[name]}",
                )
            )
    return causes


def _port_range(field: str, number: int) -> Cause:
    return fe.invalid(field, number, "must be between 1 and 65535, inclusive")


def _pod(obj: dict) -> list[Cause]:
    if "spec" not in obj or obj["spec"] is None:
        return [fe.required("spec")]
    return _pod_spec(obj["spec"], "spec")


def _label_selector(selector: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in as_object(selector.get("matchLabels")).items():
        causes.extend(fe.invalid(f"{path}.matchLabels", key, p) for p in naming.qualified_name(key))
        if isinstance(value, str):
            causes.extend(
                fe.invalid(f"{path}.matchLabels", value, p) for p in naming.label_value(value)
            )
    operators = ("DoesNotExist", "Exists", "In", "NotIn")
    for i, expression in enumerate(as_array(selector.get("matchExpressions"))):
        expression = as_object(expression)
        field = f"{path}.matchExpressions[{i}]"
        operator = expression.get("operator")
        values = as_array(expression.get("values"))
        if operator not in operators:
            causes.append(fe.not_supported(f"{field}.operator", operator, operators))
        elif operator in ("In", "NotIn") and not values:
            causes.append(
                fe.required(
                    f"{field}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            causes.append(
                fe.forbidden(
                    f"{field}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    return causes


def _go_map(labels: dict) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return f"map[string]string{{{inner}}}"


def _workload(kind: str) -> Callable[[dict], list[Cause]]:
    def check(obj: dict) -> list[Cause]:
        spec = as_object(obj.get("spec"))
        causes: list[Cause] = []
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas < 0:
            causes.append(
                fe.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
            )
        selector = spec.get("selector")
        template = as_object(spec.get("template"))
        labels = as_object(as_object(template.get("metadata")).get("labels"))
        if not isinstance(selector, dict):
            causes.append(fe.required("spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(
                Cause(
                    fe.INVALID,
                    f"Invalid value: {_show_selector(selector)}: empty selector is invalid "
                    f"for {kind.lower()}",
                    "spec.selector",
                )
            )
        else:
            causes.extend(_label_selector(selector, "spec.selector"))
            if not label_selector_matches(selector, labels):
                causes.append(
                    Cause(
                        fe.INVALID,
                        f"Invalid value: {_go_map(labels)}: `selector` does not match "
                        "template `labels`",
                        "spec.template.metadata.labels",
                    )
                )
        for key, value in labels.items():
            causes.extend(
                fe.invalid("spec.template.metadata.labels", key, p)
                for p in naming.qualified_name(key)
            )
            if isinstance(value, str):
                causes.extend(
                    fe.invalid("spec.template.metadata.labels", value, p)
                    for p in naming.label_value(value)
                )
        if "template" not in spec:
            causes.append(fe.required("spec.template"))
        else:
            claims = frozenset(
                str(as_object(as_object(c).get("metadata")).get("name", ""))
                for c in as_array(spec.get("volumeClaimTemplates"))
            )
            causes.extend(
                _pod_spec(
                    template.get("spec"), "spec.template.spec", template=True, claim_names=claims
                )
            )
        if kind == "StatefulSet":
            causes.extend(_statefulset(spec))
        return causes

    return check


def _show_selector(selector: dict) -> str:
    return '"null"' if not selector else '"object"'


def _statefulset(spec: dict) -> list[Cause]:
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if isinstance(policy, str) and policy not in ("OrderedReady", "Parallel"):
        causes.append(
            fe.not_supported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel"))
        )
    strategy = as_object(spec.get("updateStrategy")).get("type")
    if isinstance(strategy, str) and strategy not in ("OnDelete", "RollingUpdate"):
        causes.append(
            fe.not_supported("spec.updateStrategy.type", strategy, ("OnDelete", "RollingUpdate"))
        )
    for i, claim in enumerate(as_array(spec.get("volumeClaimTemplates"))):
        causes.extend(
            _claim_spec(
                as_object(as_object(claim).get("spec")), f"spec.volumeClaimTemplates[{i}].spec"
            )
        )
    return causes


def _claim_spec(spec: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    modes = as_array(spec.get("accessModes"))
    if not modes:
        causes.append(fe.required(f"{path}.accessModes", "at least 1 access mode is required"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(fe.not_supported(f"{path}.accessModes", mode, _ACCESS_MODES))
    requests = as_object(as_object(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        causes.append(fe.required(f"{path}.resources[storage]"))
    causes.extend(_bad_quantities(requests, f"{path}.resources.requests"))
    return causes


def _pvc(obj: dict) -> list[Cause]:
    return _claim_spec(as_object(obj.get("spec")), "spec")


def _pv(obj: dict) -> list[Cause]:
    spec = as_object(obj.get("spec"))
    causes: list[Cause] = []
    if "storage" not in as_object(spec.get("capacity")):
        causes.append(fe.required("spec.capacity"))
    modes = as_array(spec.get("accessModes"))
    if not modes:
        causes.append(fe.required("spec.accessModes"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(fe.not_supported("spec.accessModes", mode, _ACCESS_MODES))
    return causes


def _service(obj: dict) -> list[Cause]:
    spec = as_object(obj.get("spec"))
    causes: list[Cause] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in _SERVICE_TYPES:
        causes.append(fe.not_supported("spec.type", kind, _SERVICE_TYPES))
    ports = as_array(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if kind == "ExternalName":
        if not spec.get("externalName"):
            causes.append(fe.required("spec.externalName"))
    elif not ports and not headless:
        causes.append(fe.required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = as_object(port)
        field = f"spec.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            causes.append(fe.required(f"{field}.name"))
        elif isinstance(name, str) and name:
            if name in names:
                causes.append(fe.duplicate(f"{field}.name", name))
            names.add(name)
            causes.extend(fe.invalid(f"{field}.name", name, p) for p in naming.dns1123_label(name))
        number = port.get("port")
        if number is None:
            causes.append(fe.required(f"{field}.port"))
        elif isinstance(number, int) and not 1 <= number <= 65535:
            causes.append(_port_range(f"{field}.port", number))
        target = port.get("targetPort")
        if isinstance(target, int) and not isinstance(target, bool) and not 1 <= target <= 65535:
            causes.append(_port_range(f"{field}.targetPort", target))
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol not in _PROTOCOLS:
            causes.append(fe.not_supported(f"{field}.protocol", protocol, _PROTOCOLS))
    selector = as_object(spec.get("selector"))
    for key, value in selector.items():
        causes.extend(fe.invalid("spec.selector", key, p) for p in naming.qualified_name(key))
        if isinstance(value, str):
            causes.extend(fe.invalid("spec.selector", value, p) for p in naming.label_value(value))
    return causes


def _config_keys(obj: dict, fields: Iterable[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen: dict[str, str] = {}
    for field in fields:
        for key in as_object(obj.get(field)):
            causes.extend(fe.invalid(f"{field}[{key}]", key, p) for p in naming.config_key(key))
            if key in seen:
                causes.append(
                    fe.invalid(f"{field}[{key}]", key, f"duplicate of key present in {seen[key]}")
                )
            seen.setdefault(key, field)
    return causes


def _configmap(obj: dict) -> list[Cause]:
    return _config_keys(obj, ("data", "binaryData"))


def _secret(obj: dict) -> list[Cause]:
    causes = _config_keys(obj, ("data", "stringData"))
    for key, value in as_object(obj.get("data")).items():
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                causes.append(
                    fe.invalid(
                        f"data[{key}]", "<secret contents redacted>", "must be base64 encoded"
                    )
                )
    return causes


def _pdb(obj: dict) -> list[Cause]:
    spec = as_object(obj.get("spec"))
    causes: list[Cause] = []
    if "minAvailable" in spec and "maxUnavailable" in spec:
        causes.append(
            Cause(
                fe.INVALID,
                'Invalid value: "object": minAvailable and maxUnavailable cannot be both set',
                "spec",
            )
        )
    for key in ("minAvailable", "maxUnavailable"):
        value = spec.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            causes.append(fe.invalid(f"spec.{key}", value, "must be greater than or equal to 0"))
        if not isinstance(value, str):
            continue
        if not (value.endswith("%") and value[:-1].isdigit()):
            causes.append(fe.invalid(f"spec.{key}", value, _PERCENT_MESSAGE))
        elif int(value[:-1]) > 100:
            causes.append(fe.invalid(f"spec.{key}", value, "must not be greater than 100%"))
    if isinstance(spec.get("selector"), dict):
        causes.extend(_label_selector(spec["selector"], "spec.selector"))
    return causes


def _rules(obj: dict, *, cluster: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(as_array(obj.get("rules"))):
        rule = as_object(rule)
        field = f"rules[{i}]"
        if not as_array(rule.get("verbs")):
            causes.append(fe.required(f"{field}.verbs", "verbs must contain at least one value"))
        urls = as_array(rule.get("nonResourceURLs"))
        if urls:
            if not cluster:
                causes.append(
                    fe.invalid(
                        f"{field}.nonResourceURLs",
                        urls,
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(
                    fe.invalid(
                        f"{field}.nonResourceURLs",
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not as_array(rule.get("apiGroups")):
            causes.append(
                fe.required(
                    f"{field}.apiGroups", "resource rules must supply at least one api group"
                )
            )
        if not as_array(rule.get("resources")):
            causes.append(
                fe.required(
                    f"{field}.resources", "resource rules must supply at least one resource"
                )
            )
    return causes


def _binding(obj: dict, *, cluster: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        return [fe.required("roleRef")]
    allowed = ("ClusterRole",) if cluster else ("ClusterRole", "Role")
    if ref.get("apiGroup") != _RBAC:
        causes.append(fe.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [_RBAC]))
    if ref.get("kind") not in allowed:
        causes.append(fe.not_supported("roleRef.kind", ref.get("kind", ""), allowed))
    if not ref.get("name"):
        causes.append(fe.required("roleRef.name"))
    kinds = ("Group", "ServiceAccount", "User")
    for i, subject in enumerate(as_array(obj.get("subjects"))):
        subject = as_object(subject)
        field = f"subjects[{i}]"
        if subject.get("kind") not in kinds:
            causes.append(fe.not_supported(f"{field}.kind", subject.get("kind", ""), kinds))
        if not subject.get("name"):
            causes.append(fe.required(f"{field}.name"))
        if subject.get("kind") == "ServiceAccount" and cluster and not subject.get("namespace"):
            causes.append(fe.required(f"{field}.namespace"))
    return causes


def _storageclass(obj: dict) -> list[Cause]:
    return [] if obj.get("provisioner") else [fe.required("provisioner")]


_KIND_RULES: dict[tuple[str, str], Callable[[dict], list[Cause]]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "ConfigMap"): _configmap,
    ("", "Secret"): _secret,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("apps", "Deployment"): _workload("Deployment"),
    ("apps", "ReplicaSet"): _workload("ReplicaSet"),
    ("apps", "StatefulSet"): _workload("StatefulSet"),
    ("apps", "DaemonSet"): _workload("DaemonSet"),
    ("policy", "PodDisruptionBudget"): _pdb,
    (_RBAC, "Role"): lambda obj: _rules(obj, cluster=False),
    (_RBAC, "ClusterRole"): lambda obj: _rules(obj, cluster=True),
    (_RBAC, "RoleBinding"): lambda obj: _binding(obj, cluster=False),
    (_RBAC, "ClusterRoleBinding"): lambda obj: _binding(obj, cluster=True),
    ("storage.k8s.io", "StorageClass"): _storageclass,
    ("", "ReplicationController"): batch_kinds.check_replicationcontroller,
    ("batch", "Job"): batch_kinds.check_job,
    ("batch", "CronJob"): batch_kinds.check_cronjob,
}
