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


def lease(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("field", "value", "go_error"),
    [
        (
            "renewTime",
            "garbage",
            'parsing time "garbage" as "2006-01-02T15:04:05.000000Z07:00": cannot parse '
            '"garbage" as "2006"',
        ),
        (
            "renewTime",
            "2026-01-02T03:04:05",
            'parsing time "2026-01-02T03:04:05" as "2006-01-02T15:04:05.000000Z07:00": '
            'cannot parse "" as ".000000"',
        ),
        (
            "renewTime",
            "2026-01-02T03:04:05Z",
            'parsing time "2026-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": '
            'cannot parse "Z" as ".000000"',
        ),
        (
            "acquireTime",
            "2026-13-02T03:04:05.000000Z",
            'parsing time "2026-13-02T03:04:05.000000Z": month out of range',
        ),
    ],
)
def test_malformed_times_are_400_with_gos_message(
    api: ClusterAPI, field: str, value: str, go_error: str
) -> None:
    with pytest.raises(ApiError) as refused:
        api.create(lease(**{field: value}))
    assert refused.value.code == 400
    assert refused.value.message.startswith(
        f'Lease in version "v1" cannot be handled as a Lease: {go_error}'
    )
    assert f"spec.{field}" in refused.value.message
    assert api.list("leases", namespace="default")["items"] == []


def test_well_formed_times_are_stored(api: ClusterAPI) -> None:
    stored = api.create(
        lease(
            renewTime="2026-01-02T03:04:05.123456Z", acquireTime="2026-01-02T05:04:05.000000+02:00"
        )
    )
    assert stored["spec"]["renewTime"] == "2026-01-02T03:04:05.123456Z"
    assert stored["spec"]["acquireTime"] == "2026-01-02T03:04:05.000000Z"


def test_a_zoneless_time_in_a_time_field_is_400(api: ClusterAPI) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Test",
        "firstTimestamp": "2026-01-02T03:04:05",
    }
    with pytest.raises(ApiError) as refused:
        api.create(event)
    assert refused.value.code == 400
    assert (
        'parsing time "2026-01-02T03:04:05" as "2006-01-02T15:04:05Z07:00": cannot parse "" as '
        '"Z07:00"'
    ) in refused.value.message
    event["firstTimestamp"] = "2026-01-02T03:04:05.5Z"
    assert api.create(event)["firstTimestamp"] == "2026-01-02T03:04:05Z"


def test_empty_maps_and_lists_of_built_ins_are_not_stored(api: ClusterAPI) -> None:
    stored = api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "empty", "labels": {}, "annotations": {}, "finalizers": []},
            "data": {},
        }
    )
    assert "data" not in stored
    assert not {"labels", "annotations", "finalizers"} & set(stored["metadata"])
    pod = api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "nginx:1", "env": [], "ports": []}],
                "nodeSelector": {},
                "securityContext": {},
            },
        }
    )
    container = pod["spec"]["containers"][0]
    assert "env" not in container and "ports" not in container
    assert "nodeSelector" not in pod["spec"]
    assert pod["spec"]["securityContext"] == {}
    assert container["resources"] == {}
    assert api.get("configmaps", "empty", namespace="default") == stored


def test_server_side_apply_leaves_no_empty_map_behind(api: ClusterAPI) -> None:
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {}},
        "data": {},
    }
    first = api.patch(
        "configmaps", "ssa", applied, patch_type="apply", namespace="default", field_manager="me"
    )
    assert "data" not in first and "labels" not in first["metadata"]
    assert first["metadata"]["managedFields"][0]["manager"] == "me"
    again = api.patch(
        "configmaps", "ssa", applied, patch_type="apply", namespace="default", field_manager="me"
    )
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    filled = api.patch(
        "configmaps",
        "ssa",
        {**applied, "data": {"k": "v"}},
        patch_type="apply",
        namespace="default",
        field_manager="me",
    )
    assert filled["data"] == {"k": "v"}


def test_custom_resources_keep_empty_maps(api: ClusterAPI) -> None:
    api.create(crd())
    stored = api.create({**thing("t"), "spec": {"tags": {}, "items": []}})
    assert stored["spec"] == {"tags": {}, "items": []}


def test_apiservices_are_stored_and_listed(api: ClusterAPI) -> None:
    api.create(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"namespace": "kube-system", "name": "metrics-server"},
            },
        }
    )
    listed = api.list("apiservices")
    assert listed["kind"] == "APIServiceList"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["v1beta1.metrics.k8s.io"]
