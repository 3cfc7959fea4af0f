"""How ClusterAPI feeds writes to server-side apply and managedFields bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.sim.apiserver.api import ClusterAPI

PORTS_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "routers.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "routers", "singular": "router", "kind": "Router"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "required": ["name"],
                                            "properties": {
                                                "name": {"type": "string"},
                                                "port": {"type": "integer"},
                                            },
                                        },
                                    }
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def router(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Router", "metadata": {"name": "r"}, **spec}


@pytest.fixture
def api() -> ClusterAPI:
    api = ClusterAPI()
    api.create(PORTS_CRD)
    return api


def managers(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted(
        (e["manager"], e["operation"], e.get("subresource", ""))
        for e in obj["metadata"].get("managedFields", [])
    )


def test_apply_honours_a_crd_map_list(api: ClusterAPI) -> None:
    api.patch(
        "routers",
        "r",
        router(spec={"ports": [{"name": "http", "port": 80}]}),
        patch_type="apply",
        namespace="default",
        field_manager="a",
    )
    both = api.patch(
        "routers",
        "r",
        router(spec={"ports": [{"name": "grpc", "port": 90}]}),
        patch_type="apply",
        namespace="default",
        field_manager="b",
    )
    assert [p["name"] for p in both["spec"]["ports"]] == ["http", "grpc"]
    mine = api.patch(
        "routers", "r", router(), patch_type="apply", namespace="default", field_manager="a"
    )
    assert mine["spec"]["ports"] == [{"name": "grpc", "port": 90}]


def test_update_of_a_crd_map_list_owns_single_items(api: ClusterAPI) -> None:
    api.create(router(spec={"ports": [{"name": "http", "port": 80}]}), field_manager="a")
    live = api.get("routers", "r", namespace="default")
    live["spec"]["ports"].append({"name": "grpc", "port": 90})
    updated = api.update(live, field_manager="b")
    owned = {e["manager"]: e["fieldsV1"] for e in updated["metadata"]["managedFields"]}
    assert 'k:{"name":"grpc"}' in owned["b"]["f:spec"]["f:ports"]
    assert 'k:{"name":"http"}' in owned["a"]["f:spec"]["f:ports"]


def test_apply_to_status_keeps_its_own_entry(api: ClusterAPI) -> None:
    api.patch(
        "routers", "r", router(spec={}), patch_type="apply", namespace="default", field_manager="m"
    )
    done = api.patch(
        "routers",
        "r",
        router(status={"ready": True}),
        patch_type="apply",
        namespace="default",
        subresource="status",
        field_manager="m",
    )
    assert done["status"] == {"ready": True}
    assert managers(done) == [("m", "Apply", ""), ("m", "Apply", "status")]


def test_managed_fields_sent_with_an_update_are_kept(api: ClusterAPI) -> None:
    api.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        field_manager="old",
    )
    live = api.get("configmaps", "c", namespace="default")
    for entry in live["metadata"]["managedFields"]:
        entry["manager"] = "new"
        entry["operation"] = "Apply"
    updated = api.update(live, field_manager="writer")
    assert managers(updated) == [("new", "Apply", "")]
    applied = api.patch(
        "configmaps",
        "c",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        patch_type="apply",
        namespace="default",
        field_manager="new",
    )
    assert "a" not in applied.get("data", {})


def test_managed_fields_reset_by_a_patch_clears_them(api: ClusterAPI) -> None:
    api.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        field_manager="old",
    )
    cleared = api.patch(
        "configmaps",
        "c",
        {"metadata": {"managedFields": [{}]}},
        namespace="default",
        field_manager="writer",
    )
    assert "managedFields" not in cleared["metadata"]
    assert "managedFields" not in api.get("configmaps", "c", namespace="default")["metadata"]
