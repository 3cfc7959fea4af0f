"""OpenAPI documents: what kubectl apply/explain look for, and that they are sound schemas."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from milkyway.sim.apiserver.openapi import OpenAPIPublisher, ServedResource
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.structural import StructuralSchema

SCHEMAS = BuiltinSchemas.for_version("1.32")

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "description": "How big."},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def builtins() -> list[ServedResource]:
    return [
        ServedResource("", "v1", "Pod", "pods", True, subresources=("status",)),
        ServedResource("", "v1", "Namespace", "namespaces", False),
        ServedResource("", "v1", "Service", "services", True),
        ServedResource(
            "apps", "v1", "StatefulSet", "statefulsets", True, subresources=("status", "scale")
        ),
    ]


def widget(schema: Any = WIDGET_SCHEMA) -> ServedResource:
    return ServedResource(
        "example.com", "v1", "Widget", "widgets", True, schema=schema, subresources=("status",)
    )


@pytest.fixture
def served() -> list[ServedResource]:
    return [*builtins(), widget()]


@pytest.fixture
def publisher(served: list[ServedResource]) -> OpenAPIPublisher:
    return OpenAPIPublisher(SCHEMAS, lambda: served)


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in all_refs(v)]
    return []


def all_types(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["type"]] if "type" in node and not isinstance(node["type"], dict) else []
        return found + [t for v in node.values() for t in all_types(v)]
    if isinstance(node, list):
        return [t for v in node for t in all_types(v)]
    return []


def test_index_lists_every_group_version_with_a_hash(publisher: OpenAPIPublisher) -> None:
    paths = publisher.v3_index()["paths"]
    assert sorted(paths) == ["api/v1", "apis/apps/v1", "apis/example.com/v1"]
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert url.endswith(publisher.v3_hash("apis/apps/v1") or "-")
    assert publisher.v3_document("apis/nothing.io/v1") is None


def test_documents_are_cached_and_rebuilt_when_a_crd_changes(
    served: list[ServedResource], publisher: OpenAPIPublisher
) -> None:
    before = publisher.v3_index()["paths"]
    document = publisher.v3_document("apis/example.com/v1")
    assert publisher.v3_document("apis/example.com/v1") is document
    changed = copy.deepcopy(WIDGET_SCHEMA)
    changed["properties"]["spec"]["properties"]["color"] = {"type": "string"}
    served[-1] = widget(changed)
    after = publisher.v3_index()["paths"]
    assert after["api/v1"] == before["api/v1"]
    assert after["apis/example.com/v1"] != before["apis/example.com/v1"]
    rebuilt = publisher.v3_document("apis/example.com/v1")
    assert rebuilt is not None
    spec = rebuilt["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]
    assert "color" in spec["properties"]
    served.pop()
    assert "apis/example.com/v1" not in publisher.v3_index()["paths"]


def test_kind_schema_carries_gvk_and_merge_keys(publisher: OpenAPIPublisher) -> None:
    document = publisher.v3_document("api/v1")
    assert document is not None
    schemas = document["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["apiVersion"]["type"] == "string"
    assert "enum" not in pod["properties"]["apiVersion"]
    assert "enum" not in pod["properties"]["kind"]
    assert pod["properties"]["spec"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}],
        "description": pod["properties"]["spec"]["description"],
    }
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string",
        "oneOf": [{"type": "string"}, {"type": "integer"}],
    }


def test_json_schema_artefacts_are_converted(publisher: OpenAPIPublisher) -> None:
    for path in ("api/v1", "apis/apps/v1", "apis/example.com/v1"):
        document = publisher.v3_document(path)
        assert document is not None
        names = set(document["components"]["schemas"])
        refs = all_refs(document)
        assert refs
        assert all(r.startswith("#/components/schemas/") for r in refs)
        assert {r.removeprefix("#/components/schemas/") for r in refs} <= names
        assert all(isinstance(t, str) and t != "null" for t in all_types(document))


def test_patch_operations_advertise_field_validation(publisher: OpenAPIPublisher) -> None:
    """kubectl leaves validation to the server only if the kind's PATCH lists it."""
    document = publisher.v3_document("api/v1")
    assert document is not None
    patch = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Pod", "version": "v1"}
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= query
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    namespaces = document["paths"]["/api/v1/namespaces/{name}"]
    assert set(namespaces) == {"get", "put", "patch", "delete"}
    assert "/api/v1/pods" in document["paths"]


def test_scale_subresource_is_an_autoscaling_scale(publisher: OpenAPIPublisher) -> None:
    document = publisher.v3_document("apis/apps/v1")
    assert document is not None
    scale = document["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale"]
    assert scale["put"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in document["components"]["schemas"]


def validator_for(document: dict[str, Any], name: str) -> jsonschema.protocols.Validator:
    """A validator resolving ``#/components/schemas/...`` inside ``document``."""
    resource = Resource(contents=document, specification=DRAFT4)
    registry = Registry().with_resource("urn:openapi", resource)
    schema = {"$ref": f"urn:openapi#/components/schemas/{name}"}
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_published_schemas_load_and_validate_objects(publisher: OpenAPIPublisher) -> None:
    document = publisher.v3_document("apis/apps/v1")
    assert document is not None
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft4Validator.check_schema(schema)
    validator = validator_for(document, "io.k8s.api.apps.v1.StatefulSet")
    good = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "zk", "labels": {"app": "zk"}},
        "spec": {
            "serviceName": "zk",
            "selector": {"matchLabels": {"app": "zk"}},
            "template": {
                "metadata": {"labels": {"app": "zk"}},
                "spec": {
                    "containers": [
                        {"name": "zk", "image": "zk", "ports": [{"containerPort": 2181}]}
                    ]
                },
            },
        },
    }
    assert list(validator.iter_errors(good)) == []
    bad = copy.deepcopy(good)
    bad["spec"]["replicas"] = "three"
    assert [list(e.absolute_path) for e in validator.iter_errors(bad)] == [["spec", "replicas"]]


def test_custom_resource_schema_is_published_with_object_meta(
    publisher: OpenAPIPublisher,
) -> None:
    document = publisher.v3_document("apis/example.com/v1")
    assert document is not None
    schemas = document["components"]["schemas"]
    kind = schemas["com.example.v1.Widget"]
    assert kind["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Widget", "version": "v1"}
    ]
    assert kind["properties"]["spec"]["properties"]["port"]["anyOf"] == [
        {"type": "integer"},
        {"type": "string"},
    ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert schemas["com.example.v1.WidgetList"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.v1.Widget"
    }
    patch = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Widget"
    # kubectl apply sends a strategic merge patch only where the PATCH accepts one.
    assert sorted(patch["requestBody"]["content"]) == [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ]
    validator = validator_for(document, "com.example.v1.Widget")
    errors = validator.iter_errors({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}})
    assert [e.message for e in errors] == ["'size' is a required property"]


def test_structural_schema_objects_are_accepted_as_custom_schemas() -> None:
    served = [widget(StructuralSchema(WIDGET_SCHEMA))]
    document = OpenAPIPublisher(SCHEMAS, lambda: served).v3_document("apis/example.com/v1")
    assert document is not None
    assert "com.example.v1.Widget" in document["components"]["schemas"]


def test_v2_document_is_swagger_with_resolvable_definitions(publisher: OpenAPIPublisher) -> None:
    document = publisher.v2_document()
    assert document["swagger"] == "2.0"
    definitions = document["definitions"]
    refs = all_refs(document)
    assert all(r.startswith("#/definitions/") for r in refs)
    assert {r.removeprefix("#/definitions/") for r in refs} <= set(definitions)
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string",
        "format": "int-or-string",
    }
    widget_spec = definitions["com.example.v1.Widget"]["properties"]["spec"]["properties"]
    assert "nullable" not in widget_spec["note"]
    assert widget_spec["port"] == {
        "x-kubernetes-int-or-string": True,
        "type": "string",
        "format": "int-or-string",
    }
    body = document["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]["parameters"][-1]
    assert body["in"] == "body"
    assert "fieldValidation" in {
        p["name"]
        for p in document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"][
            "parameters"
        ]
    }
