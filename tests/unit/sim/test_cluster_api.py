"""ClusterAPI semantics that controllers and clients rely on."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.errors import ApiError


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }


def pod(name: str, node: str = "", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **extra}, "spec": spec}


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return obj


@pytest.fixture
def api() -> ClusterAPI:
    return ClusterAPI()


def test_metadata_revision_and_generate_name(api: ClusterAPI) -> None:
    before = api.revision
    made = api.create({**cm(""), "metadata": {"generateName": "job-"}})
    md = made["metadata"]
    assert md["name"].startswith("job-") and len(md["name"]) == len("job-") + 5
    assert md["uid"] and md["creationTimestamp"].endswith("Z")
    assert md["resourceVersion"] == str(before + 1) == str(api.revision)
    with pytest.raises(ApiError) as exists:
        api.create({**cm(md["name"])})
    assert exists.value.code == 409 and exists.value.reason == "AlreadyExists"
    assert api.revision == before + 1


def test_generation_moves_on_spec_changes_only(api: ClusterAPI) -> None:
    api.create(deployment("web"))
    api.patch("deployments.apps", "web", {"metadata": {"labels": {"x": "y"}}})
    assert api.get("deployments.apps", "web")["metadata"]["generation"] == 1
    api.patch("deployments.apps", "web", {"status": {"replicas": 5}}, subresource="status")
    assert api.get("deployments.apps", "web")["metadata"]["generation"] == 1
    api.patch("deployments.apps", "web", {"spec": {"replicas": 3}})
    assert api.get("deployments.apps", "web")["metadata"]["generation"] == 2


def test_status_and_spec_are_written_separately(api: ClusterAPI) -> None:
    api.create(deployment("web"))
    obj = api.get("deployments.apps", "web")
    obj["spec"]["replicas"] = 7
    obj["status"] = {"replicas": 7}
    api.update(obj, subresource="status")
    stored = api.get("deployments.apps", "web")
    assert stored["spec"]["replicas"] == 1 and stored["status"] == {"replicas": 7}
    stored["spec"]["replicas"] = 2
    stored["status"] = {"replicas": 0}
    api.update(stored)
    final = api.get("deployments.apps", "web")
    assert final["spec"]["replicas"] == 2 and final["status"] == {"replicas": 7}


def test_stale_resource_version_conflicts_and_noop_keeps_version(api: ClusterAPI) -> None:
    first = api.create(cm("a"))
    second = api.update({**first, "data": {"k": "v"}})
    with pytest.raises(ApiError) as conflict:
        api.update({**first, "data": {"k": "other"}})
    assert conflict.value.code == 409 and conflict.value.reason == "Conflict"
    unchanged = api.update(second)
    assert unchanged["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]


def test_scale_subresource(api: ClusterAPI) -> None:
    api.create(deployment("web", replicas=2))
    scale = api.get_scale("deployments.apps", "web")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=web"
    api.patch("deployments.apps", "web", {"spec": {"replicas": 6}}, subresource="scale")
    assert api.get("deployments.apps", "web")["spec"]["replicas"] == 6
    with pytest.raises(ApiError) as invalid:
        api.update_scale("deployments.apps", "web", {"spec": {"replicas": -1}})
    assert invalid.value.code == 422


def test_list_selectors_and_pagination(api: ClusterAPI) -> None:
    for i in range(7):
        api.create(cm(f"cm-{i}", tier="web" if i % 2 else "db"))
    web = api.list("configmaps", label_selector="tier in (web),tier!=db")
    assert [o["metadata"]["name"] for o in web["items"]] == ["cm-1", "cm-3", "cm-5"]
    assert api.list("configmaps", label_selector="!tier")["items"] == []
    named = api.list("configmaps", field_selector="metadata.name=cm-4")
    assert [o["metadata"]["name"] for o in named["items"]] == ["cm-4"]
    pages, token = [], None
    while True:
        page = api.list("configmaps", namespace="default", limit=3, continue_=token)
        pages.append([o["metadata"]["name"] for o in page["items"]])
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == [["cm-0", "cm-1", "cm-2"], ["cm-3", "cm-4", "cm-5"], ["cm-6"]]
    with pytest.raises(ApiError) as unsupported:
        api.list("configmaps", field_selector="data.x=1")
    assert unsupported.value.code == 400


def test_pod_field_selectors(api: ClusterAPI) -> None:
    api.create(pod("a", node="n1"))
    api.create(pod("b"))
    on_n1 = api.list("pods", field_selector="spec.nodeName=n1,status.phase=Pending")
    assert [p["metadata"]["name"] for p in on_n1["items"]] == ["a"]
    unscheduled = api.list("pods", field_selector="spec.nodeName=")
    assert [p["metadata"]["name"] for p in unscheduled["items"]] == ["b"]


def test_dry_run_changes_nothing(api: ClusterAPI) -> None:
    before = api.revision
    api.create(cm("a"), dry_run=True)
    assert api.revision == before
    with pytest.raises(ApiError):
        api.get("configmaps", "a")


def test_finalizers_hold_deletion_until_removed(api: ClusterAPI) -> None:
    api.create({**cm("a"), "metadata": {"name": "a", "finalizers": ["example.com/x"]}})
    held = api.delete("configmaps", "a")
    assert held["metadata"]["deletionTimestamp"]
    obj = api.get("configmaps", "a")
    obj["metadata"]["finalizers"].append("example.com/new")
    with pytest.raises(ApiError) as forbidden:
        api.update(obj)
    assert forbidden.value.code == 422
    api.patch("configmaps", "a", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as gone:
        api.get("configmaps", "a")
    assert gone.value.code == 404


def test_delete_preconditions(api: ClusterAPI) -> None:
    made = api.create(cm("a"))
    with pytest.raises(ApiError) as mismatch:
        api.delete("configmaps", "a", preconditions={"uid": "not-the-uid"})
    assert mismatch.value.code == 409
    api.delete("configmaps", "a", preconditions={"uid": made["metadata"]["uid"]})


@pytest.mark.parametrize(
    ("policy", "dependent_left", "orphaned"),
    [("Background", False, False), ("Foreground", False, False), ("Orphan", True, True)],
)
def test_owner_reference_garbage_collection(
    api: ClusterAPI, policy: str, dependent_left: bool, orphaned: bool
) -> None:
    owner = api.create(deployment("web"))
    api.create(owned_by(cm("child"), owner))
    api.delete("deployments.apps", "web", propagation_policy=policy)
    remaining = api.list("configmaps")["items"]
    assert bool(remaining) is dependent_left
    if orphaned:
        assert "ownerReferences" not in remaining[0]["metadata"]
    assert api.list("deployments.apps")["items"] == []


def test_foreground_deletion_waits_for_held_dependents(api: ClusterAPI) -> None:
    owner = api.create(deployment("web"))
    child = owned_by(cm("child"), owner)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    api.create(child)
    api.delete("deployments.apps", "web", propagation_policy="Foreground")
    waiting = api.get("deployments.apps", "web")
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    api.patch("configmaps", "child", {"metadata": {"finalizers": None}})
    assert api.list("deployments.apps")["items"] == []


def test_graceful_pod_deletion_waits_for_a_kubelet(api: ClusterAPI) -> None:
    api.create(pod("quick", node="n1"))
    api.delete("pods", "quick")
    assert api.list("pods")["items"] == []
    unregister = api.register_kubelet()
    api.create(pod("slow", node="n1"))
    held = api.delete("pods", "slow")
    assert held["metadata"]["deletionGracePeriodSeconds"] == 30
    assert api.get("pods", "slow")["metadata"]["deletionTimestamp"]
    api.delete("pods", "slow", grace_period_seconds=0)
    assert api.list("pods")["items"] == []
    unregister()


def test_namespace_deletion_removes_contents(api: ClusterAPI) -> None:
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    api.create(cm("a"), namespace="team")
    api.create(deployment("web"), namespace="team")
    held = {**cm("held"), "metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    api.create(held, namespace="team")
    api.delete("namespaces", "team")
    terminating = api.get("namespaces", "team")
    assert terminating["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as refused:
        api.create(cm("new"), namespace="team")
    assert refused.value.code == 403
    assert [o["metadata"]["name"] for o in api.list("configmaps", namespace="team")["items"]] == [
        "held"
    ]
    api.patch("configmaps", "held", {"metadata": {"finalizers": None}}, namespace="team")
    with pytest.raises(ApiError) as gone:
        api.get("namespaces", "team")
    assert gone.value.code == 404


def test_create_in_missing_namespace_is_404(api: ClusterAPI) -> None:
    with pytest.raises(ApiError) as missing:
        api.create(cm("a"), namespace="nowhere")
    assert missing.value.code == 404 and "namespaces" in missing.value.message


def test_crd_serves_resource_and_deleting_it_removes_objects(api: ClusterAPI) -> None:
    api.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"n": {"type": "integer", "minimum": 0}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    crd = api.get("customresourcedefinitions", "things.example.com")
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}
    thing = api.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"n": 1},
        }
    )
    assert "namespace" not in thing["metadata"]
    with pytest.raises(ApiError) as invalid:
        api.create(
            {
                "apiVersion": "example.com/v1",
                "kind": "Thing",
                "metadata": {"name": "u"},
                "spec": {"n": -1},
            }
        )
    assert invalid.value.code == 422
    watcher = api.watch("things.example.com", resource_version=str(api.revision))
    api.delete("customresourcedefinitions", "things.example.com")
    assert [e.type for e in watcher.drain()] == ["DELETED"]
    with pytest.raises(ApiError):
        api.resource("things.example.com")


def test_eviction_hook_and_binding(api: ClusterAPI) -> None:
    api.create(pod("p"))
    api.bind("p", {"name": "n1"})
    assert api.get("pods", "p")["spec"]["nodeName"] == "n1"
    with pytest.raises(ApiError) as bound:
        api.bind("p", {"name": "n2"})
    assert bound.value.code == 409

    def refuse(_api: ClusterAPI, _pod: dict[str, Any], _eviction: dict[str, Any]) -> None:
        raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the budget")

    api.eviction_check = refuse
    with pytest.raises(ApiError) as refused:
        api.evict("p")
    assert refused.value.code == 429
    api.eviction_check = None
    assert api.evict("p")["status"] == "Success"
    assert api.list("pods")["items"] == []


def test_logs(api: ClusterAPI) -> None:
    api.create(pod("p"))
    api.write_log("p", "c", "one\ntwo\nthree")
    assert api.read_log("p", tail_lines=2) == "two\nthree\n"
    with pytest.raises(ApiError) as wrong:
        api.read_log("p", container="nope")
    assert wrong.value.code == 400


def test_strict_field_validation_and_invalid_objects(api: ClusterAPI) -> None:
    bad = cm("a")
    bad["bogus"] = 1
    with pytest.raises(ApiError) as strict:
        api.create(bad)
    assert strict.value.code == 400 and "bogus" in strict.value.message
    warnings: list[str] = []
    made = api.create(bad, field_validation="Warn", warnings=warnings)
    assert "bogus" not in made and any("bogus" in w for w in warnings)
    with pytest.raises(ApiError) as invalid:
        api.create(deployment("Bad_Name"))
    assert invalid.value.code == 422
    assert any(c.field == "metadata.name" for c in invalid.value.causes)


def test_pod_spec_is_immutable_except_images(api: ClusterAPI) -> None:
    api.create(pod("p"))
    changed = api.get("pods", "p")
    changed["spec"]["containers"][0]["image"] = "nginx:2"
    api.update(changed)
    assert api.get("pods", "p")["spec"]["containers"][0]["image"] == "nginx:2"
    with pytest.raises(ApiError) as refused:
        api.patch("pods", "p", {"spec": {"restartPolicy": "Never"}})
    assert refused.value.code == 422 and refused.value.causes[0].field == "spec"


def test_workload_selector_and_statefulset_spec_are_guarded(api: ClusterAPI) -> None:
    api.create(deployment("web"))
    with pytest.raises(ApiError) as selector:
        api.patch(
            "deployments.apps",
            "web",
            {
                "spec": {
                    "selector": {"matchLabels": {"x": "y"}},
                    "template": {"metadata": {"labels": {"x": "y"}}},
                }
            },
        )
    assert "spec.selector" in [c.field for c in selector.value.causes]
    sts = deployment("db")
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    api.create(sts)
    api.patch("statefulsets.apps", "db", {"spec": {"replicas": 3}})
    with pytest.raises(ApiError) as forbidden:
        api.patch("statefulsets.apps", "db", {"spec": {"serviceName": "other"}})
    assert forbidden.value.code == 422


def test_binding_role_ref_and_claim_spec_are_guarded(api: ClusterAPI) -> None:
    api.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"}],
        }
    )
    with pytest.raises(ApiError) as role_ref:
        api.patch("rolebindings.rbac.authorization.k8s.io", "b", {"roleRef": {"name": "x"}})
    assert role_ref.value.code == 422 and role_ref.value.causes[0].field == "roleRef"
    api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    with pytest.raises(ApiError) as modes:
        api.patch("persistentvolumeclaims", "c", {"spec": {"accessModes": ["ReadWriteMany"]}})
    assert modes.value.code == 422 and modes.value.causes[0].field == "spec"


def test_service_keeps_its_cluster_ip_and_secrets_fold_string_data(api: ClusterAPI) -> None:
    svc = api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]},
        }
    )
    ip = svc["spec"]["clusterIP"]
    replaced = api.get("services", "s")
    del replaced["spec"]["clusterIP"], replaced["spec"]["clusterIPs"]
    assert api.update(replaced)["spec"]["clusterIP"] == ip
    secret = api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pw"},
            "stringData": {"password": "hunter2"},
            "immutable": True,
        }
    )
    assert secret["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in secret
    with pytest.raises(ApiError) as frozen:
        api.patch("secrets", "pw", {"data": {"password": "eA=="}})
    assert frozen.value.code == 422


def test_dependents_of_missing_owners_are_collected_at_creation(api: ClusterAPI) -> None:
    owner = api.create(deployment("web"))
    api.create(owned_by(cm("kept"), owner))
    ghost = {**owner, "metadata": {**owner["metadata"], "uid": "gone-uid"}}
    api.create(owned_by(cm("orphan"), ghost))
    unknown = owned_by(cm("unknown-kind"), owner)
    unknown["metadata"]["ownerReferences"][0]["kind"] = "Gizmo"
    api.create(unknown)
    names = [o["metadata"]["name"] for o in api.list("configmaps", namespace="default")["items"]]
    assert names == ["kept", "unknown-kind"]
