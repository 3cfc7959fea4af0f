"""Strategic merge patch on built-in types, as ``kubectl patch`` (the default type) uses it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.patching import strategic_merge_patch
from milkyway.sim.apiserver.schemas import BuiltinSchemas

SCHEMAS = BuiltinSchemas.for_version("1.32")
POD = SCHEMAS.definition_for(("", "v1", "Pod"))
DEPLOYMENT = SCHEMAS.definition_for(("apps", "v1", "Deployment"))


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "args": ["--a", "--b"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
                {"name": "sidecar", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
        },
    }
    base["spec"].update(spec)
    return base


def smp(original: dict[str, Any], patch: dict[str, Any], schema: Any = POD) -> dict[str, Any]:
    before = copy.deepcopy(original)
    patch_before = copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, schema, SCHEMAS)
    assert original == before, "the original must not be mutated"
    assert patch == patch_before, "the patch must not be mutated"
    return result


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["containers"]


def test_containers_merge_by_name() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}})
    assert [c["name"] for c in containers(out)] == ["app", "sidecar"]
    assert containers(out)[1] == {"name": "sidecar", "image": "side:2"}
    assert containers(out)[0] == containers(pod())[0]


def test_a_new_container_is_added_not_replacing_the_others() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "extra", "image": "x:1"}]}})
    assert sorted(c["name"] for c in containers(out)) == ["app", "extra", "sidecar"]


def test_new_items_go_before_untouched_items_they_are_not_ordered_against() -> None:
    # The interleaving a real server produces: server-only items only precede patch items
    # that they preceded in the live list.
    out = smp(
        pod(),
        {
            "spec": {
                "containers": [{"name": "app", "image": "app:2"}, {"name": "new", "image": "n"}]
            }
        },
    )
    assert [c["name"] for c in containers(out)] == ["app", "new", "sidecar"]


def test_env_merges_by_name_ports_by_container_port_mounts_by_path() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}],
                    "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                }
            ]
        }
    }
    app = containers(smp(pod(), patch))[0]
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert app["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 9090},
    ]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert app["args"] == ["--a", "--b"]


def test_lists_without_merge_strategy_are_replaced() -> None:
    patch = {
        "spec": {
            "containers": [{"name": "app", "args": ["--c"]}],
            "tolerations": [{"key": "b", "operator": "Exists"}],
        }
    }
    out = smp(pod(), patch)
    assert containers(out)[0]["args"] == ["--c"]
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_patch_delete_removes_a_list_item_by_merge_key() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}})
    assert [c["name"] for c in containers(out)] == ["app"]


def test_patch_replace_in_a_list_replaces_the_whole_list() -> None:
    patch = {"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}
    assert containers(smp(pod(), patch)) == [{"name": "only", "image": "o:1"}]


def test_patch_replace_in_a_map_replaces_the_map() -> None:
    out = smp(pod(), {"metadata": {"labels": {"new": "1", "$patch": "replace"}}})
    assert out["metadata"]["labels"] == {"new": "1"}


def test_patch_delete_in_a_map_empties_it() -> None:
    out = smp(pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_null_deletes_a_key() -> None:
    out = smp(pod(), {"metadata": {"labels": {"tier": None}}, "spec": {"tolerations": None}})
    assert out["metadata"]["labels"] == {"app": "web"}
    assert "tolerations" not in out["spec"]


def test_nulls_inside_new_values_are_dropped() -> None:
    out = smp(pod(), {"spec": {"nodeSelector": {"zone": "a", "gone": None}}})
    assert out["spec"]["nodeSelector"] == {"zone": "a"}


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    original = pod()
    original["metadata"]["finalizers"] = ["a", "b"]
    out = smp(original, {"metadata": {"finalizers": ["b", "c"]}})
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(out["metadata"]["finalizers"]) == 3
    out = smp(original, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]


def test_set_element_order_reorders_the_merged_list() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "app:2"}],
        }
    }
    out = smp(pod(), patch)
    assert [c["name"] for c in containers(out)] == ["sidecar", "app"]
    assert containers(out)[1]["image"] == "app:2"


def test_set_element_order_must_agree_with_the_patch_list() -> None:
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{"name": "sidecar", "image": "s"}],
        }
    }
    with pytest.raises(ApiError) as err:
        smp(pod(), patch)
    assert err.value.code == 400


def deployment(strategy: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "strategy": strategy},
    }


def test_retain_keys_clears_the_fields_not_retained() -> None:
    original = deployment({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(original, patch, DEPLOYMENT)["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_list_every_key_the_patch_sets() -> None:
    original = deployment({"type": "RollingUpdate"})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}
    with pytest.raises(ApiError) as err:
        smp(original, patch, DEPLOYMENT)
    assert err.value.code == 400
    assert "retainKeys" in err.value.message


def test_volume_source_switch_with_retain_keys() -> None:
    patch = {
        "spec": {
            "volumes": [
                {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "c"}}
            ]
        }
    }
    assert smp(pod(), patch)["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "c"}}]


@pytest.mark.parametrize(
    "patch",
    [
        {"metadata": {"labels": {"$patch": "merge"}}},
        {"metadata": {"labels": {"$patch": "bogus"}}},
        {"spec": {"containers": [{"$patch": "merge"}]}},
        {"spec": {"containers": [{"$patch": "delete"}]}},
        {"spec": {"containers": [{"image": "no-name"}]}},
        {"spec": {"$retainKeys": "containers"}},
        {"spec": {"$setElementOrder/containers": "x"}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        {"metadata": {"$deleteFromPrimitiveList": ["a"]}},
    ],
)
def test_malformed_directives_are_bad_requests(patch: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        smp(pod(), patch)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


def test_custom_resources_refuse_strategic_merge_patch_with_415() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(widget, {"spec": {"size": 2}}, None, SCHEMAS)
    assert err.value.code == 415
    assert err.value.reason == "UnsupportedMediaType"
    assert "application/merge-patch+json" in err.value.message
    assert "strategic-merge-patch" not in err.value.message


def test_patch_must_be_an_object() -> None:
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(pod(), [], POD, SCHEMAS)  # type: ignore[arg-type]
    assert err.value.code == 400


names = st.sampled_from(["a", "b", "c", "d"])
container_lists = st.lists(
    st.builds(lambda n, i: {"name": n, "image": i}, names, st.text("xy", max_size=2)),
    max_size=4,
    unique_by=lambda c: c["name"],
)
label_maps = st.dictionaries(names, st.text("pq", max_size=2), max_size=3)


@settings(max_examples=150, deadline=None)
@given(container_lists, label_maps, st.lists(names, max_size=3, unique=True))
def test_empty_patch_is_identity(
    cs: list[dict[str, Any]], labels: dict[str, str], finalizers: list[str]
) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": labels, "finalizers": finalizers},
        "spec": {"containers": cs},
    }
    assert smp(obj, {}) == obj


@settings(max_examples=150, deadline=None)
@given(container_lists, container_lists)
def test_container_patch_touches_only_named_containers(
    live: list[dict[str, Any]], patch: list[dict[str, Any]]
) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": live},
    }
    out = containers(smp(obj, {"spec": {"containers": patch}}))
    by_name = {c["name"]: c for c in out}
    assert len(by_name) == len(out)
    patched = {c["name"]: c for c in patch}
    assert set(by_name) == {c["name"] for c in live} | set(patched)
    for name, item in by_name.items():
        expected = patched.get(name) or next(c for c in live if c["name"] == name)
        assert item == expected
    patch_order = [c["name"] for c in out if c["name"] in patched]
    assert patch_order == [c["name"] for c in patch]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(names, max_size=4, unique=True),
    st.lists(names, max_size=4),
    st.lists(names, max_size=2, unique=True),
)
def test_finalizers_patch_is_a_set_union_minus_deletions(
    live: list[str], added: list[str], deleted: list[str]
) -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": live}}
    patch = {"metadata": {"finalizers": added, "$deleteFromPrimitiveList/finalizers": deleted}}
    out = smp(obj, patch)["metadata"]["finalizers"]
    assert len(out) == len(set(out))
    assert set(out) == (set(live) | set(added)) - set(deleted)
