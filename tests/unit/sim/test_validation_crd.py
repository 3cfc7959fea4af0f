"""validate_crd: what would keep a CustomResourceDefinition from being served."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.validation import validate_builtin, validate_crd

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.size",
                        "statusReplicasPath": ".status.size",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Image", "type": "string", "jsonPath": ".spec.containers[0].image"},
                ],
            },
            {
                "name": "v1beta1",
                "served": False,
                "storage": False,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            },
        ],
    },
}


def changed(path: str, value: Any) -> dict[str, Any]:
    crd = copy.deepcopy(CRD)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = crd
    for part in parents:
        target = target[part]
    target[last] = value
    return crd


def test_a_good_crd_passes_both_checks() -> None:
    assert validate_crd(CRD) == []
    assert validate_builtin(CRD, BuiltinSchemas.for_version("1.32")) == []


CASES = [
    (
        "metadata.name",
        "widget.example.com",
        "metadata.name",
        'Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group',
    ),
    (
        "spec.scope",
        "Global",
        "spec.scope",
        'Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
    ),
    (
        "spec.versions.1.storage",
        True,
        "spec.versions",
        'Invalid value: "array": must have exactly one version marked as storage version',
    ),
    ("spec.versions.1.name", "v1", "spec.versions[1].name", 'Duplicate value: "v1"'),
    (
        "spec.versions.1.schema",
        {},
        "spec.versions[1].schema.openAPIV3Schema",
        "Required value: schemas are required",
    ),
    (
        "spec.versions.0.additionalPrinterColumns.0.type",
        "float",
        "spec.versions[0].additionalPrinterColumns[0].type",
        'Unsupported value: "float": supported values: '
        '"boolean", "date", "integer", "number", "string"',
    ),
    (
        "spec.versions.0.subresources.scale.specReplicasPath",
        ".status.size",
        "spec.versions[0].subresources.scale.specReplicasPath",
        'Invalid value: ".status.size": should be a json path under .spec',
    ),
    ("spec.names.kind", "", "spec.names.kind", "Required value"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), CASES)
def test_bad_crds_get_exact_causes(path: str, value: Any, field: str, message: str) -> None:
    assert [(c.field, c.message) for c in validate_crd(changed(path, value))] == [(field, message)]


def test_group_needs_a_dot_and_names_must_match() -> None:
    crd = changed("spec.group", "example")
    assert [c.field for c in validate_crd(crd)] == ["spec.group", "metadata.name"]


def test_printer_column_json_path_must_parse() -> None:
    crd = changed("spec.versions.0.additionalPrinterColumns.0.jsonPath", "spec.size")
    causes = validate_crd(crd)
    assert [(c.reason, c.field) for c in causes] == [
        ("FieldValueInvalid", "spec.versions[0].additionalPrinterColumns[0].jsonPath")
    ]
    assert "must be a simple json path starting with ." in causes[0].message


def test_non_structural_version_schema_is_reported_under_its_version() -> None:
    crd = changed(
        "spec.versions.0.schema.openAPIV3Schema",
        {"type": "object", "properties": {"spec": {"description": "untyped"}}},
    )
    assert [(c.field, c.message) for c in validate_crd(crd)] == [
        (
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields",
        )
    ]
