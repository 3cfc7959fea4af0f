"""ClusterAPI behaviour that real clients observed to differ from a real API server."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError

CLEANUP = "customresourcecleanup.apiextensions.k8s.io"


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def thing(name: str, *finalizers: str) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if finalizers:
        md["finalizers"] = list(finalizers)
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": md, "spec": {"n": 1}}


@pytest.fixture
def api() -> ClusterAPI:
    return ClusterAPI()


def test_deleting_a_crd_waits_for_its_objects_finalizers(api: ClusterAPI) -> None:
    api.create(crd())
    api.create(thing("plain"))
    api.create(thing("held", "example.com/keep"))
    api.delete("customresourcedefinitions", "things.example.com")

    terminating = api.get("customresourcedefinitions", "things.example.com")
    assert terminating["metadata"]["deletionTimestamp"]
    assert CLEANUP in terminating["metadata"]["finalizers"]
    condition = next(c for c in terminating["status"]["conditions"] if c["type"] == "Terminating")
    assert condition["status"] == "True"
    assert condition["reason"] == "InstanceDeletionInProgress"

    left = api.list("things.example.com")["items"]
    assert [o["metadata"]["name"] for o in left] == ["held"]
    assert left[0]["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as refused:
        api.create(thing("late"))
    assert refused.value.code == 405
    assert "terminating" in refused.value.message

    api.patch("things.example.com", "held", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as gone:
        api.get("customresourcedefinitions", "things.example.com")
    assert gone.value.code == 404
    with pytest.raises(ApiError):
        api.resource("things.example.com")


def test_a_crd_without_objects_goes_at_once(api: ClusterAPI) -> None:
    api.create(crd())
    deleted = api.delete("customresourcedefinitions", "things.example.com")
    assert deleted["metadata"]["name"] == "things.example.com"
    with pytest.raises(ApiError) as gone:
        api.get("customresourcedefinitions", "things.example.com")
    assert gone.value.code == 404


def cm(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }


def test_exact_list_reads_an_older_revision(api: ClusterAPI) -> None:
    api.create(cm("a", "1"))
    api.create(cm("b", "1"))
    then = api.list("configmaps", namespace="default")["metadata"]["resourceVersion"]
    api.patch("configmaps", "a", {"data": {"v": "2"}}, namespace="default")
    api.delete("configmaps", "b", namespace="default")
    api.create(cm("c", "1"))

    old = api.list(
        "configmaps", namespace="default", resource_version=then, resource_version_match="Exact"
    )
    assert old["metadata"]["resourceVersion"] == then
    assert {o["metadata"]["name"]: o["data"]["v"] for o in old["items"]} == {"a": "1", "b": "1"}
    now = api.list(
        "configmaps",
        namespace="default",
        resource_version=then,
        resource_version_match="NotOlderThan",
    )
    assert {o["metadata"]["name"] for o in now["items"]} == {"a", "c"}


def test_exact_list_at_a_compacted_revision_is_410() -> None:
    api = ClusterAPI(history=3)
    api.create(cm("a", "1"))
    then = api.list("configmaps", namespace="default")["metadata"]["resourceVersion"]
    for n in range(5):
        api.patch("configmaps", "a", {"data": {"v": str(n)}}, namespace="default")
    with pytest.raises(ApiError) as expired:
        api.list(
            "configmaps", namespace="default", resource_version=then, resource_version_match="Exact"
        )
    assert expired.value.code == 410
    assert expired.value.reason == "Expired"


def test_resource_version_match_needs_a_resource_version(api: ClusterAPI) -> None:
    with pytest.raises(ApiError) as refused:
        api.list("configmaps", resource_version_match="Exact")
    assert refused.value.code == 400
    assert "resourceVersion" in refused.value.message


def test_status_fields_in_the_real_servers_order(api: ClusterAPI) -> None:
    with pytest.raises(ApiError) as missing:
        api.get("configmaps", "nothing", namespace="default")
    assert list(missing.value.to_status()) == [
        "kind",
        "apiVersion",
        "metadata",
        "status",
        "message",
        "reason",
        "details",
        "code",
    ]


def test_strategic_merge_on_a_custom_object_lists_only_accepted_types(api: ClusterAPI) -> None:
    api.create(crd())
    api.create(thing("t"))
    with pytest.raises(ApiError) as refused:
        api.patch("things.example.com", "t", {"spec": {"n": 2}}, patch_type="strategic")
    assert refused.value.code == 415
    assert "application/merge-patch+json" in refused.value.message
    assert "strategic-merge-patch" not in refused.value.message
