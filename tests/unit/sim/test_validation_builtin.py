"""Built-in objects: schema and semantic validation with Kubernetes-worded causes."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.fielderrors import is_unknown_field
from milkyway.sim.apiserver.quantity import parse_quantity
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.validation import strict_decoding_error, validate_builtin

SCHEMAS = BuiltinSchemas.for_version("1.32")

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "name": "http"}],
                "resources": {"requests": {"cpu": "100m", "memory": 64}},
                "env": [{"name": "A", "value": "1"}],
            }
        ],
        "restartPolicy": "Always",
    },
}

STATEFULSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "zk", "namespace": "default"},
    "spec": {
        "serviceName": "zk",
        "replicas": 3,
        "selector": {"matchLabels": {"app": "zk"}},
        "template": {
            "metadata": {"labels": {"app": "zk", "tier": "data"}},
            "spec": {
                "containers": [
                    {
                        "name": "zk",
                        "image": "zookeeper:3.9",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ]
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "zk", "namespace": "default"},
    "spec": {"selector": {"app": "zk"}, "ports": [{"port": 2181, "targetPort": "client"}]},
}


def with_changes(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``value`` at the dotted ``path`` (``...`` deletes)."""
    obj = copy.deepcopy(base)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = obj
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return obj


def causes_of(obj: dict[str, Any], *, strict: bool = True) -> list[tuple[str, str, str]]:
    return [(c.reason, c.field, c.message) for c in validate_builtin(obj, SCHEMAS, strict=strict)]


@pytest.mark.parametrize(
    "obj",
    [
        POD,
        STATEFULSET,
        SERVICE,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "annotations": {"example.com/owner": "x"}},
            "data": {"zoo.cfg": "tickTime=2000", "KEY_1": "v"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:controller:zk"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "web-"},
            "spec": POD["spec"],
        },
    ],
    ids=["pod", "statefulset", "service", "namespace", "configmap", "clusterrole", "ssar", "gen"],
)
def test_valid_objects_have_no_causes(obj: dict[str, Any]) -> None:
    assert validate_builtin(obj, SCHEMAS) == []


INVALID_CASES = [
    (
        "image wrong type",
        with_changes(POD, "spec.containers.0.image", 3),
        (
            "FieldValueTypeInvalid",
            "spec.containers[0].image",
            'Invalid value: "integer": spec.containers[0].image in body must be of type string: '
            '"integer"',
        ),
    ),
    (
        "container name missing",
        with_changes(POD, "spec.containers.0.name", ...),
        ("FieldValueRequired", "spec.containers[0].name", "Required value"),
    ),
    (
        "no containers",
        with_changes(POD, "spec.containers", []),
        ("FieldValueRequired", "spec.containers", "Required value"),
    ),
    (
        "image missing",
        with_changes(POD, "spec.containers.0.image", ...),
        ("FieldValueRequired", "spec.containers[0].image", "Required value"),
    ),
    (
        "restart policy",
        with_changes(POD, "spec.restartPolicy", "Sometimes"),
        (
            "FieldValueNotSupported",
            "spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ),
    ),
    (
        "name not a subdomain",
        with_changes(POD, "metadata.name", "Web_0"),
        (
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "Web_0": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    ),
    (
        "no name",
        with_changes(POD, "metadata.name", ...),
        ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"),
    ),
    (
        "label value",
        with_changes(POD, "metadata.labels", {"app": "-web"}),
        (
            "FieldValueInvalid",
            "metadata.labels",
            'Invalid value: "-web": a valid label must be an empty string or consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ),
    (
        "annotation key",
        with_changes(POD, "metadata.annotations", {"a/b/c": "x"}),
        (
            "FieldValueInvalid",
            "metadata.annotations",
            'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')",
        ),
    ),
    (
        "finalizer name",
        with_changes(POD, "metadata.finalizers", ["example.com/keep", "a/b/c"]),
        (
            "FieldValueInvalid",
            "metadata.finalizers[1]",
            'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')",
        ),
    ),
    (
        "duplicate container",
        with_changes(
            POD,
            "spec.containers",
            [{"name": "app", "image": "a"}, {"name": "app", "image": "b"}],
        ),
        ("FieldValueDuplicate", "spec.containers[1].name", 'Duplicate value: "app"'),
    ),
    (
        "container port range",
        with_changes(POD, "spec.containers.0.ports.0.containerPort", 70000),
        (
            "FieldValueInvalid",
            "spec.containers[0].ports[0].containerPort",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
    ),
    (
        "malformed quantity",
        with_changes(POD, "spec.containers.0.resources.requests.memory", "1Gx"),
        (
            "FieldValueInvalid",
            "spec.containers[0].resources.requests[memory]",
            'Invalid value: "1Gx": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
    ),
    (
        "request above limit",
        with_changes(POD, "spec.containers.0.resources.limits", {"cpu": "50m"}),
        (
            "FieldValueInvalid",
            "spec.containers[0].resources.requests",
            'Invalid value: "100m": must be less than or equal to cpu limit of 50m',
        ),
    ),
    (
        "mount of an unknown volume",
        with_changes(POD, "spec.containers.0.volumeMounts", [{"name": "cache", "mountPath": "/c"}]),
        ("FieldValueNotFound", "spec.containers[0].volumeMounts[0].name", 'Not found: "cache"'),
    ),
    (
        "mount paths unique",
        with_changes(
            with_changes(
                POD, "spec.volumes", [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]
            ),
            "spec.containers.0.volumeMounts",
            [{"name": "a", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}],
        ),
        (
            "FieldValueInvalid",
            "spec.containers[0].volumeMounts[1].mountPath",
            'Invalid value: "/x": must be unique',
        ),
    ),
    (
        "statefulset mounts an unknown volume",
        with_changes(
            STATEFULSET,
            "spec.template.spec.containers.0.volumeMounts",
            [{"name": "logs", "mountPath": "/logs"}],
        ),
        (
            "FieldValueNotFound",
            "spec.template.spec.containers[0].volumeMounts[0].name",
            'Not found: "logs"',
        ),
    ),
    (
        "negative replicas",
        with_changes(STATEFULSET, "spec.replicas", -1),
        (
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
    ),
    (
        "selector mismatch",
        with_changes(STATEFULSET, "spec.selector", {"matchLabels": {"app": "kafka"}}),
        (
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            'Invalid value: map[string]string{"app":"zk", "tier":"data"}: `selector` does not '
            "match template `labels`",
        ),
    ),
    (
        "selector missing",
        with_changes(STATEFULSET, "spec.selector", ...),
        ("FieldValueRequired", "spec.selector", "Required value"),
    ),
    (
        "template restart policy",
        with_changes(STATEFULSET, "spec.template.spec.restartPolicy", "Never"),
        (
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Never": supported values: "Always"',
        ),
    ),
    (
        "claim without access modes",
        with_changes(STATEFULSET, "spec.volumeClaimTemplates.0.spec.accessModes", []),
        (
            "FieldValueRequired",
            "spec.volumeClaimTemplates[0].spec.accessModes",
            "Required value: at least 1 access mode is required",
        ),
    ),
    (
        "service name DNS-1035",
        with_changes(SERVICE, "metadata.name", "1zk"),
        (
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "1zk": a DNS-1035 label must consist of lower case alphanumeric '
            "characters or '-', start with an alphabetic character, and end with an alphanumeric "
            "character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
    ),
    (
        "service without ports",
        with_changes(SERVICE, "spec.ports", []),
        ("FieldValueRequired", "spec.ports", "Required value"),
    ),
    (
        "service port names",
        with_changes(SERVICE, "spec.ports", [{"port": 1, "name": "a"}, {"port": 2, "name": "a"}]),
        ("FieldValueDuplicate", "spec.ports[1].name", 'Duplicate value: "a"'),
    ),
    (
        "namespace name is a label",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}},
        (
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "team.a": a lowercase RFC 1123 label must consist of lower case '
            "alphanumeric characters or '-', and must start and end with an alphanumeric "
            "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
    ),
    (
        "configmap key",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a b": ""}},
        (
            "FieldValueInvalid",
            "data[a b]",
            'Invalid value: "a b": a valid config key must consist of alphanumeric characters, '
            "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
            "validation is '[-._a-zA-Z0-9]+')",
        ),
    ),
    (
        "rbac rule without verbs",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}],
        },
        (
            "FieldValueRequired",
            "rules[0].verbs",
            "Required value: verbs must contain at least one value",
        ),
    ),
    (
        "enum of apiVersion",
        with_changes(POD, "kind", "Pods"),
        ("FieldValueInvalid", "kind", 'Invalid value: "Pods": no built-in kind "Pods" in "v1"'),
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [(c[1], c[2]) for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_objects_get_exact_causes(obj: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert causes_of(obj) == [expected]


def test_unknown_fields_are_causes_only_when_strict() -> None:
    pod = with_changes(POD, "spec.containers.0.imagePolicy", "Always")
    pod["spec"]["foo"] = {"bar": 1}
    causes = validate_builtin(pod, SCHEMAS, strict=True)
    assert [c.field for c in causes] == ["spec.containers[0].imagePolicy", "spec.foo"]
    assert all(is_unknown_field(c) for c in causes)
    assert causes[1] == Cause("FieldValueInvalid", 'unknown field "spec.foo"', "spec.foo")
    assert validate_builtin(pod, SCHEMAS, strict=False) == []


def test_strict_decoding_error_reads_like_the_api_server() -> None:
    causes = validate_builtin(with_changes(POD, "spec.foo", 1), SCHEMAS)
    error = strict_decoding_error("Pod", "v1", causes)
    assert error.code == 400
    assert error.message == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.foo"'
    )


def test_int_or_string_and_quantity_accept_both_forms_and_null() -> None:
    service = with_changes(SERVICE, "spec.ports.0.targetPort", 2181)
    assert validate_builtin(service, SCHEMAS) == []
    assert validate_builtin(with_changes(SERVICE, "spec.ports.0.targetPort", None), SCHEMAS) == []
    bad = with_changes(SERVICE, "spec.ports.0.targetPort", [1])
    assert [c.reason for c in validate_builtin(bad, SCHEMAS)] == ["FieldValueTypeInvalid"]


def test_missing_api_version_and_kind_are_required() -> None:
    assert causes_of({"metadata": {"name": "x"}}) == [
        ("FieldValueRequired", "apiVersion", "Required value"),
        ("FieldValueRequired", "kind", "Required value"),
    ]


def test_validation_does_not_mutate_its_input() -> None:
    pod = with_changes(POD, "spec.foo", 1)
    before = copy.deepcopy(pod)
    validate_builtin(pod, SCHEMAS)
    assert pod == before


def test_several_problems_are_all_reported() -> None:
    pod = with_changes(POD, "metadata.name", "Bad_Name")
    pod["spec"]["containers"].append({"name": "app"})
    fields = [c.field for c in validate_builtin(pod, SCHEMAS)]
    assert fields == ["metadata.name", "spec.containers[1].name", "spec.containers[1].image"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", "0.1"), ("1Gi", str(2**30)), ("2.5e3", "2500"), ("1k", "1000"), (3, "3")],
)
def test_quantities_parse_exactly(text: str | int, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["1Gx", "", "Gi", "1.2.3", "--1"])
def test_malformed_quantities_are_rejected(text: str) -> None:
    assert parse_quantity(text) is None


def test_map_keys_render_in_brackets() -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app": 1}},
        "data": {"zoo.cfg": 2},
    }
    assert [c.field for c in validate_builtin(configmap, SCHEMAS)] == [
        "data[zoo.cfg]",
        "metadata.labels[app]",
    ]
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "ws.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "typo": 1}},
                        }
                    },
                }
            ],
        },
    }
    field = "spec.versions[0].schema.openAPIV3Schema.properties[spec].typo"
    assert validate_builtin(crd, SCHEMAS) == [
        Cause("FieldValueInvalid", f'unknown field "{field}"', field)
    ]
