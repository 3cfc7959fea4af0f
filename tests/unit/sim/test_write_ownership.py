"""Objects handed to or returned by ClusterAPI writes are the caller's: mutating them later
never changes what is stored, nor what watchers and other readers see."""

from __future__ import annotations

from typing import Any

from milkyway.sim.apiserver.api import ClusterAPI

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "runs.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "runs", "singular": "run", "kind": "Run"},
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
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string", "default": "Pending"},
                                    "nodes": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _api() -> ClusterAPI:
    api = ClusterAPI()
    api.create(CRD)
    api.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Run",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {"flow": "f"},
        },
        field_manager="engine",
    )
    return api


def _status_write(api: ClusterAPI, nodes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    body = api.get("runs.example.com", "r", namespace="default")
    body["status"] = {"phase": "Running", "nodes": nodes}
    return body, api.update(body, subresource="status", field_manager="engine")


def _stored(api: ClusterAPI) -> dict[str, Any]:
    return api.get("runs.example.com", "r", namespace="default")


def test_mutating_the_body_or_result_of_a_status_write_changes_nothing_stored() -> None:
    api = _api()
    body, result = _status_write(api, {"a": {"phase": "Running", "out": [1, 2]}})
    stored = _stored(api)
    assert stored == result
    body["status"]["nodes"]["a"]["out"].append(3)
    for entry in body["metadata"]["managedFields"]:
        entry["fieldsV1"]["f:extra"] = {}
    result["status"]["nodes"]["a"]["phase"] = "Failed"
    result["metadata"]["managedFields"][0]["fieldsV1"].clear()
    assert _stored(api) == stored


def test_managed_fields_of_a_later_write_are_not_shared_with_earlier_results() -> None:
    api = _api()
    _, first = _status_write(api, {"a": {"phase": "Running"}})
    _, second = _status_write(api, {"a": {"phase": "Running"}, "b": {"phase": "Pending"}})
    entry = next(e for e in second["metadata"]["managedFields"] if e.get("subresource"))
    assert "f:b" in entry["fieldsV1"]["f:status"]["f:nodes"]
    before = _stored(api)
    for result in (first, second):
        for item in result["metadata"]["managedFields"]:
            item["fieldsV1"].clear()
    assert _stored(api) == before


def test_watchers_see_each_write_as_it_was_committed() -> None:
    api = _api()
    watcher = api.watch("runs.example.com", namespace="default")
    watcher.drain()
    body, result = _status_write(api, {"a": {"phase": "Running"}})
    body["status"]["nodes"]["a"]["phase"] = "Changed"
    result["status"]["nodes"]["a"]["phase"] = "Changed"
    (event,) = watcher.drain()
    assert event.object["status"]["nodes"]["a"]["phase"] == "Running"
    watcher.close()


def test_a_body_handed_over_under_sharing_is_stored_and_the_result_is_the_stored_object() -> None:
    api = _api()
    body = api.get("runs.example.com", "r", namespace="default")
    body["status"] = {"nodes": {"a": {}}}
    with api.sharing():
        result = api.update(body, subresource="status", field_manager="engine")
    assert result["status"] == {"phase": "Pending", "nodes": {"a": {}}}
    assert _stored(api) == result
