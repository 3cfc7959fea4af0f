"""Server-side apply and managedFields, as ``kubectl apply --server-side`` relies on them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.apply import MAX_UPDATE_MANAGERS, record_update, server_side_apply
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.managed_fields import decode_fields, encode_fields
from milkyway.sim.apiserver.schemas import BuiltinSchemas

SCHEMAS = BuiltinSchemas.for_version("1.32")
DEPLOYMENT = SCHEMAS.definition_for(("apps", "v1", "Deployment"))
CONFIGMAP = SCHEMAS.definition_for(("", "v1", "ConfigMap"))
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"


def deployment(replicas: int = 2, image: str = "nginx:1", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }
    obj["spec"].update(extra)
    return obj


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str = "kubectl",
    *,
    force: bool = False,
    now: str = T1,
    schema: Any = DEPLOYMENT,
) -> dict[str, Any]:
    live_before = copy.deepcopy(live)
    config_before = copy.deepcopy(config)
    out = server_side_apply(
        live, config, manager=manager, force=force, schema=schema, schemas=SCHEMAS, now=now
    )
    assert live == live_before and config == config_before, "inputs must not be mutated"
    return out


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def body(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def test_apply_on_create_records_an_apply_entry_in_fieldsv1() -> None:
    out = apply(None, deployment())
    assert body(out) == deployment()
    [entry] = out["metadata"]["managedFields"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"nginx"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            }
                        }
                    },
                },
            },
        },
    }


def test_apply_twice_is_idempotent() -> None:
    first = apply(None, deployment())
    second = apply(first, deployment(), now=T2)
    assert second == first


def test_apply_without_a_field_removes_it() -> None:
    first = apply(None, deployment(minReadySeconds=5))
    second = apply(first, deployment(), now=T2)
    assert "minReadySeconds" not in second["spec"]
    assert entries(second)[("kubectl", "Apply")]["time"] == T2


def test_apply_without_a_container_removes_it_whole() -> None:
    config = deployment()
    config["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    first = apply(None, config)
    patched = copy.deepcopy(first)
    patched["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = "Always"
    patched = record_update(first, patched, manager="kubectl-edit", operation="Update", now=T2)
    second = apply(patched, deployment(), now=T2)
    assert second["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}
    ]
    assert ("kubectl-edit", "Update") not in entries(second)


def test_removed_field_stays_while_another_manager_owns_it() -> None:
    first = apply(None, deployment(minReadySeconds=5))
    edited = copy.deepcopy(first)
    edited["spec"]["minReadySeconds"] = 9
    edited = record_update(first, edited, manager="kubectl-edit", operation="Update", now=T2)
    second = apply(edited, deployment(), now=T2)
    assert second["spec"]["minReadySeconds"] == 9


def test_unowned_fields_survive_reapply() -> None:
    first = apply(None, deployment())
    first["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/log"
    second = apply(first, deployment(image="nginx:2"), now=T2)
    container = second["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/log"
    assert container["image"] == "nginx:2"


def test_conflict_with_an_update_manager_is_409_with_one_cause_per_field() -> None:
    live = record_update(
        None, deployment(), manager="kubectl-client-side-apply", operation="Update", now=T0
    )
    with pytest.raises(ApiError) as err:
        apply(live, deployment(replicas=3, image="nginx:2"))
    status = err.value.to_status()
    assert status["code"] == 409
    assert status["reason"] == "Conflict"
    assert status["message"].startswith("Apply failed with 2 conflicts: ")
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        },
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": '.spec.template.spec.containers[name="nginx"].image',
        },
    ]


def test_single_conflict_message_matches_the_real_server() -> None:
    live = record_update(
        None, deployment(), manager="kubectl-client-side-apply", operation="Update", now=T0
    )
    with pytest.raises(ApiError) as err:
        apply(live, deployment(replicas=3))
    assert err.value.message == (
        "Apply failed with 1 conflict: conflict with "
        '"kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )


def test_conflict_with_another_applier() -> None:
    live = apply(None, deployment(), manager="alice")
    with pytest.raises(ApiError) as err:
        apply(live, deployment(replicas=5), manager="bob", now=T2)
    assert [c.message for c in err.value.causes] == ['conflict with "alice"']


def test_force_takes_ownership() -> None:
    live = apply(None, deployment(), manager="alice")
    out = apply(live, deployment(replicas=5), manager="bob", force=True, now=T2)
    assert out["spec"]["replicas"] == 5
    alice = decode_fields(entries(out)[("alice", "Apply")]["fieldsV1"])
    bob = decode_fields(entries(out)[("bob", "Apply")]["fieldsV1"])
    replicas = (("f", "spec"), ("f", "replicas"))
    assert replicas in bob and replicas not in alice
    # Alice applying her old value now conflicts with bob.
    with pytest.raises(ApiError):
        apply(out, deployment(), manager="alice", now=T2)


def test_same_value_shares_ownership_and_removal_keeps_it() -> None:
    live = apply(None, deployment(), manager="alice")
    shared = apply(live, deployment(), manager="bob", now=T2)
    assert body(shared) == body(live)
    # Alice stops applying replicas; bob still owns it, so it stays.
    config = deployment()
    del config["spec"]["replicas"]
    out = apply(shared, config, manager="alice", now=T2)
    assert out["spec"]["replicas"] == 2


def test_different_managers_own_different_containers() -> None:
    live = apply(None, deployment(), manager="alice")
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:1"}]}}},
    }
    out = apply(live, sidecar, manager="bob", now=T2)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "side"]
    # Alice re-applying her config keeps bob's container.
    again = apply(out, deployment(), manager="alice", now=T2)
    assert [c["name"] for c in again["spec"]["template"]["spec"]["containers"]] == names


def test_port_without_protocol_matches_the_defaulted_live_port() -> None:
    live = apply(None, deployment())
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    out = apply(live, deployment(), now=T2)
    assert out["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]


def test_custom_resource_without_schema_treats_lists_as_atomic() -> None:
    def widget(items: list[Any]) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"items": items, "size": 1},
        }

    first = apply(None, widget([{"n": 1}, {"n": 2}]), schema=None)
    assert entries(first)[("kubectl", "Apply")]["fieldsV1"] == {
        "f:spec": {"f:items": {}, "f:size": {}}
    }
    out = apply(first, widget([{"n": 3}]), schema=None, now=T2)
    assert out["spec"]["items"] == [{"n": 3}]


def test_crd_schema_list_map_keys_are_honoured() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "members": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["id"],
                        "items": {"type": "object", "properties": {"id": {"type": "string"}}},
                    }
                },
            }
        },
    }

    def config(*ids: str) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"members": [{"id": i} for i in ids]},
        }

    live = apply(None, config("a"), manager="alice", schema=schema)
    out = apply(live, config("b"), manager="bob", schema=schema, now=T2)
    assert out["spec"]["members"] == [{"id": "a"}, {"id": "b"}]


@pytest.mark.parametrize(
    ("config", "live", "fragment"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"managedFields": []}},
            None,
            "metadata.managedFields must be nil",
        ),
        ({"apiVersion": "apps/v1", "metadata": {"name": "web"}}, None, "Kind"),
        ({"kind": "Deployment", "metadata": {"name": "web"}}, None, "Incorrect version"),
        (
            {"apiVersion": "apps/v2", "kind": "Deployment", "metadata": {"name": "web"}},
            deployment(),
            "Specified patch version: apps/v2, expected: apps/v1",
        ),
    ],
)
def test_bad_apply_configurations_are_400(
    config: dict[str, Any], live: dict[str, Any] | None, fragment: str
) -> None:
    with pytest.raises(ApiError) as err:
        apply(live, config)
    assert err.value.code == 400
    assert fragment in err.value.message


def test_duplicate_keys_in_an_applied_list_are_invalid() -> None:
    config = deployment()
    config["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "x"})
    with pytest.raises(ApiError) as err:
        apply(None, config)
    assert err.value.code == 422


# --------------------------------------------------------------------- record_update


def test_create_records_labels_and_items_as_members() -> None:
    out = record_update(None, deployment(), manager="kubectl-create", operation="Update", now=T0)
    [entry] = out["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-create"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == "apps/v1"
    assert entry["time"] == T0
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert fields["f:spec"]["f:selector"] == {}
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert container["."] == {}


def test_update_takes_the_fields_it_changes() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 7
    out = record_update(created, scaled, manager="scaler", operation="Update", now=T1)
    scaler = decode_fields(entries(out)[("scaler", "Update")]["fieldsV1"])
    creator = decode_fields(entries(out)[("creator", "Update")]["fieldsV1"])
    replicas = (("f", "spec"), ("f", "replicas"))
    assert scaler == {replicas}
    assert replicas not in creator
    # The applier that set replicas before loses it too, so its next apply conflicts.
    applied = apply(None, deployment(), manager="alice", now=T0)
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 7
    scaled = record_update(applied, scaled, manager="kubectl-scale", operation="Update", now=T1)
    with pytest.raises(ApiError) as err:
        apply(scaled, deployment(), manager="alice", now=T2)
    assert [c.message for c in err.value.causes] == ['conflict with "kubectl-scale" using apps/v1']


def test_removed_fields_leave_every_manager() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    trimmed = copy.deepcopy(created)
    del trimmed["metadata"]["labels"]
    out = record_update(created, trimmed, manager="editor", operation="Update", now=T1)
    creator = decode_fields(entries(out)[("creator", "Update")]["fieldsV1"])
    assert not any(p[:2] == (("f", "metadata"), ("f", "labels")) for p in creator)
    assert ("editor", "Update") not in entries(out)


def test_noop_update_changes_no_entry() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    assert record_update(created, created, manager="other", operation="Update", now=T1) == created


def test_managed_fields_reset_clears_them() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    reset = copy.deepcopy(created)
    reset["metadata"]["managedFields"] = [{}]
    out = record_update(created, reset, manager="x", operation="Update", now=T1)
    assert "managedFields" not in out["metadata"]


def test_client_omitting_managed_fields_keeps_the_live_ones() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    replaced = body(created)
    replaced["spec"]["replicas"] = 4
    out = record_update(created, replaced, manager="replacer", operation="Update", now=T1)
    assert set(entries(out)) == {("creator", "Update"), ("replacer", "Update")}


def test_status_subresource_entry_is_separate() -> None:
    created = record_update(None, deployment(), manager="ctl", operation="Update", now=T0)
    with_status = copy.deepcopy(created)
    with_status["status"] = {"readyReplicas": 2}
    out = record_update(
        created, with_status, manager="ctl", operation="Update", now=T1, subresource="status"
    )
    status_entry = [e for e in out["metadata"]["managedFields"] if e.get("subresource")]
    assert status_entry[0]["subresource"] == "status"
    assert status_entry[0]["fieldsV1"] == {"f:status": {"f:readyReplicas": {}}}


def test_update_managers_are_capped() -> None:
    obj = record_update(None, deployment(), manager="m0", operation="Update", now=T0)
    for i in range(1, MAX_UPDATE_MANAGERS + 3):
        nxt = copy.deepcopy(obj)
        nxt["metadata"]["labels"][f"k{i}"] = "v"
        obj = record_update(
            obj, nxt, manager=f"m{i}", operation="Update", now=f"2026-01-01T01:{i:02d}:00Z"
        )
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == MAX_UPDATE_MANAGERS
    assert "ancient-changes" in managers


def test_entries_are_sorted_apply_first_then_by_time() -> None:
    live = record_update(None, deployment(), manager="zed", operation="Update", now=T0)
    out = apply(live, {**deployment(), "spec": {"paused": True}}, manager="alpha", now=T2)
    assert [(e["operation"], e["manager"]) for e in out["metadata"]["managedFields"]] == [
        ("Apply", "alpha"),
        ("Update", "zed"),
    ]


# --------------------------------------------------------------------------- properties

keys = st.sampled_from(["a", "b", "c", "d"])
data_maps = st.dictionaries(keys, st.text("xy", max_size=2), max_size=4)


def configmap(data: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": labels},
        "data": data,
    }


@settings(max_examples=100, deadline=None)
@given(data_maps, data_maps)
def test_property_apply_by_the_same_manager_is_idempotent(data: dict, labels: dict) -> None:
    first = apply(None, configmap(data, labels), schema=CONFIGMAP)
    assert apply(first, configmap(data, labels), schema=CONFIGMAP, now=T2) == first


@settings(max_examples=100, deadline=None)
@given(data_maps, keys, data_maps)
def test_property_dropping_a_key_from_the_config_removes_it(
    data: dict, dropped: str, labels: dict
) -> None:
    first = apply(None, configmap({**data, dropped: "v"}, labels), schema=CONFIGMAP)
    rest = {k: v for k, v in data.items() if k != dropped}
    out = apply(first, configmap(rest, labels), schema=CONFIGMAP, now=T2)
    assert out["data"] == rest
    assert out["metadata"]["labels"] == labels


@settings(max_examples=100, deadline=None)
@given(data_maps, data_maps)
def test_property_apply_conflicts_exactly_on_changed_foreign_fields(
    mine: dict, theirs: dict
) -> None:
    live = apply(None, configmap(theirs, {}), manager="them", schema=CONFIGMAP)
    changed = sorted(k for k in mine if k in theirs and mine[k] != theirs[k])
    try:
        out = apply(live, configmap(mine, {}), manager="me", schema=CONFIGMAP, now=T2)
    except ApiError as err:
        assert [c.field for c in err.causes] == [f".data.{k}" for k in changed]
        assert changed
    else:
        assert not changed
        assert out["data"] == {**theirs, **mine}


paths = st.lists(
    st.lists(
        st.sampled_from([("f", "spec"), ("f", "x"), ("k", '{"name":"a"}'), ("v", '"q"')]),
        min_size=1,
        max_size=4,
    ).map(tuple),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(paths)
def test_property_fieldsv1_round_trips(field_paths: list[tuple]) -> None:
    field_set = set(field_paths)
    assert decode_fields(encode_fields(field_set)) == field_set


def test_untouched_entries_are_kept_as_they_were_and_malformed_ones_dropped() -> None:
    created = record_update(None, deployment(), manager="creator", operation="Update", now=T0)
    creator_entry = copy.deepcopy(created["metadata"]["managedFields"][0])
    labelled = copy.deepcopy(created)
    labelled["metadata"]["managedFields"].append(
        {"manager": "broken", "operation": "Update", "apiVersion": "v1", "fieldsV1": "nonsense"}
    )
    labelled["metadata"]["annotations"] = {"note": "x"}
    out = record_update(created, labelled, manager="annotator", operation="Update", now=T1)
    assert entries(out)[("creator", "Update")] == creator_entry
    assert ("broken", "Update") not in entries(out)
    assert entries(out)[("annotator", "Update")]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}}
    }


containers_strategy = st.lists(
    st.builds(
        lambda name, image: {"name": name, "image": image},
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["x:1", "x:2"]),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda c: c["name"],
)


def with_containers(items: list[dict[str, Any]]) -> dict[str, Any]:
    config = deployment()
    config["spec"]["template"]["spec"]["containers"] = items
    return config


@settings(max_examples=100, deadline=None)
@given(containers_strategy, containers_strategy)
def test_property_reapplying_a_container_list_converges_on_it(
    first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    live = apply(None, with_containers(first))
    out = apply(live, with_containers(second), now=T2)
    assert out["spec"]["template"]["spec"]["containers"] == second
    assert apply(out, with_containers(second), now=T2) == out


def test_status_apply_keeps_its_own_entry() -> None:
    live = apply(None, deployment())
    status = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "status": {"replicas": 2},
    }
    out = server_side_apply(
        live,
        status,
        manager="kubectl",
        force=False,
        schema=DEPLOYMENT,
        schemas=SCHEMAS,
        now=T2,
        subresource="status",
    )
    by_subresource = {e.get("subresource", ""): e for e in out["metadata"]["managedFields"]}
    assert by_subresource["status"]["fieldsV1"] == {"f:status": {"f:replicas": {}}}
    assert "f:spec" in by_subresource[""]["fieldsV1"]
    assert out["spec"] == live["spec"]


def client_side_applied(data: dict[str, str], last: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap as ``kubectl apply`` (client-side) leaves it."""
    annotation = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": last,
    }
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "default",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(annotation)
            },
        },
        "data": data,
    }
    return record_update(None, obj, manager="kubectl-client-side-apply", operation="Update", now=T0)


def cm_config(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": data,
    }


def test_kubectl_takes_over_fields_it_applied_client_side() -> None:
    live = client_side_applied({"a": "1", "b": "2"}, {"a": "1", "b": "2"})
    out = apply(live, cm_config(a="9"), manager="kubectl", schema=CONFIGMAP)
    assert out["data"] == {"a": "9", "b": "2"}
    # Only the manager named "kubectl" gets this upgrade path.
    with pytest.raises(ApiError):
        apply(live, cm_config(a="9"), manager="other", schema=CONFIGMAP)


def test_fields_changed_since_the_client_side_apply_still_conflict() -> None:
    live = client_side_applied({"a": "5", "b": "2"}, {"a": "1", "b": "2"})
    with pytest.raises(ApiError) as err:
        apply(live, cm_config(a="9", b="3"), manager="kubectl", schema=CONFIGMAP)
    assert [c.field for c in err.value.causes] == [".data.a"]


def test_finalizers_are_owned_per_value() -> None:
    def with_finalizers(*names: str) -> dict[str, Any]:
        config = cm_config(a="1")
        config["metadata"]["finalizers"] = list(names)
        return config

    live = apply(None, with_finalizers("example.com/mine"), schema=CONFIGMAP)
    [entry] = live["metadata"]["managedFields"]
    assert entry["fieldsV1"]["f:metadata"] == {"f:finalizers": {'v:"example.com/mine"': {}}}
    theirs = copy.deepcopy(live)
    theirs["metadata"]["finalizers"].append("example.com/theirs")
    theirs = record_update(live, theirs, manager="controller", operation="Update", now=T1)
    out = apply(theirs, with_finalizers(), schema=CONFIGMAP, now=T2)
    assert out["metadata"]["finalizers"] == ["example.com/theirs"]
