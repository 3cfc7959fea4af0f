"""Updates of built-in objects: the fields a real server keeps immutable."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from milkyway.sim.apiserver.builtin_updates import carry_over, check_update

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "containers": [{"name": "c", "image": "app:1"}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
        "nodeName": "n1",
    },
}
STATEFULSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "zk"},
    "spec": {
        "replicas": 3,
        "serviceName": "zk",
        "selector": {"matchLabels": {"app": "zk"}},
        "template": {
            "metadata": {"labels": {"app": "zk"}},
            "spec": {"containers": [{"name": "zk", "image": "zk:1"}]},
        },
        "volumeClaimTemplates": [
            {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
        ],
    },
}
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d"},
    "spec": {"selector": {"matchLabels": {"app": "d"}}, "replicas": 1},
}
CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c"},
    "immutable": True,
    "data": {"a": "1"},
}
BINDING: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "b", "namespace": "x"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "s"},
    "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]},
}
CLAIM: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "c"},
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "volumeName": "pv1",
    },
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = obj
    for part in parents:
        target = target[part]
    target[last] = value
    return obj


def refusals(new: dict[str, Any], old: dict[str, Any]) -> list:
    group = new["apiVersion"].rpartition("/")[0]
    return check_update(new, old, group, new["kind"])


ALLOWED = [
    ("pod image", POD, "spec.containers.0.image", "app:2"),
    (
        "pod toleration added",
        POD,
        "spec.tolerations",
        [*POD["spec"]["tolerations"], {"key": "b", "operator": "Exists"}],
    ),
    ("pod labels", POD, "metadata.labels", {"a": "b"}),
    ("statefulset replicas", STATEFULSET, "spec.replicas", 5),
    ("statefulset template", STATEFULSET, "spec.template.spec.containers.0.image", "zk:2"),
    ("deployment replicas", DEPLOYMENT, "spec.replicas", 4),
    ("claim grows", CLAIM, "spec.resources.requests.storage", "2Gi"),
    ("service ports", SERVICE, "spec.ports", [{"port": 81}]),
]


@pytest.mark.parametrize(
    ("base", "path", "value"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED]
)
def test_allowed_updates(base: dict[str, Any], path: str, value: Any) -> None:
    assert refusals(changed(base, path, value), base) == []


FORBIDDEN = [
    ("pod command", POD, "spec.containers.0.command", ["sh"], "FieldValueForbidden", "spec"),
    ("pod node", POD, "spec.nodeName", "n2", "FieldValueForbidden", "spec"),
    ("pod toleration removed", POD, "spec.tolerations", [], "FieldValueForbidden", "spec"),
    (
        "statefulset claims",
        STATEFULSET,
        "spec.volumeClaimTemplates.0.spec.accessModes",
        ["ReadWriteMany"],
        "FieldValueForbidden",
        "spec",
    ),
    (
        "statefulset service",
        STATEFULSET,
        "spec.serviceName",
        "other",
        "FieldValueForbidden",
        "spec",
    ),
    (
        "deployment selector",
        DEPLOYMENT,
        "spec.selector",
        {"matchLabels": {"app": "e"}},
        "FieldValueInvalid",
        "spec.selector",
    ),
    ("immutable configmap", CONFIGMAP, "data", {"a": "2"}, "FieldValueForbidden", "data"),
    ("role ref", BINDING, "roleRef.name", "other", "FieldValueInvalid", "roleRef"),
    (
        "cluster ip",
        SERVICE,
        "spec.clusterIP",
        "10.96.0.6",
        "FieldValueInvalid",
        "spec.clusterIPs[0]",
    ),
    ("claim modes", CLAIM, "spec.accessModes", ["ReadWriteMany"], "FieldValueForbidden", "spec"),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "reason", "field"),
    [c[1:] for c in FORBIDDEN],
    ids=[c[0] for c in FORBIDDEN],
)
def test_forbidden_updates(
    base: dict[str, Any], path: str, value: Any, reason: str, field: str
) -> None:
    causes = refusals(changed(base, path, value), base)
    assert [(c.reason, c.field) for c in causes] == [(reason, field)]


def test_statefulset_message_names_the_mutable_fields() -> None:
    causes = refusals(changed(STATEFULSET, "spec.serviceName", "x"), STATEFULSET)
    assert causes[0].message == (
        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
        "'minReadySeconds' are forbidden"
    )


def test_a_replacement_without_cluster_ips_keeps_the_allocated_ones() -> None:
    replacement = copy.deepcopy(SERVICE)
    del replacement["spec"]["clusterIP"]
    carry_over("", "Service", SERVICE, replacement)
    assert replacement["spec"]["clusterIP"] == SERVICE["spec"]["clusterIP"]
    assert refusals(replacement, SERVICE) == []
