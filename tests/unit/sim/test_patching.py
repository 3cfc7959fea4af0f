"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) as the API server applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.patching import (
    MAX_JSON_PATCH_OPERATIONS,
    json_equal,
    json_patch,
    merge_patch,
)

# ------------------------------------------------------------------------ merge patch

MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": {"x": 1}}, {"a": {"y": [1, 2]}}, {"a": {"x": 1, "y": [1, 2]}}),
    (
        {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"replicas": 1}},
        {"metadata": {"labels": {"tier": None}}, "spec": {"replicas": 3}},
        {"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 3}},
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), MERGE_CASES)
def test_merge_patch_follows_rfc7386(original: dict, patch: dict, expected: dict) -> None:
    before = copy.deepcopy(original)
    assert merge_patch(original, patch) == expected
    assert original == before


def test_merge_patch_keeps_key_order_and_does_not_share_values() -> None:
    original = {"a": {"x": 1}, "b": [1], "c": 3}
    result = merge_patch(original, {"b": [2]})
    assert list(result) == ["a", "b", "c"]
    result["a"]["x"] = 99
    assert original["a"]["x"] == 1


@pytest.mark.parametrize("patch", [[], "x", 3, None])
def test_merge_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(ApiError) as err:
        merge_patch({"a": 1}, patch)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("xyz", max_size=2), inner),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text("abc", max_size=2), json_values, max_size=4)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _merge_diff(source: Any, target: Any) -> Any:
    """The merge patch turning ``source`` into ``target`` (``target`` holds no nulls)."""
    if not isinstance(source, dict) or not isinstance(target, dict):
        return target
    patch: dict[str, Any] = {k: None for k in source if k not in target}
    for key, value in target.items():
        if key not in source:
            patch[key] = value
        elif not json_equal(source[key], value):
            if isinstance(value, dict) and isinstance(source[key], dict):
                patch[key] = _merge_diff(source[key], value)
            else:
                patch[key] = value
    return patch


@settings(max_examples=200, deadline=None)
@given(json_objects, json_objects)
def test_merge_patch_of_a_diff_round_trips(source: dict, target: dict) -> None:
    target = _without_nulls(target)
    assert merge_patch(source, _merge_diff(source, target)) == target


@settings(max_examples=100, deadline=None)
@given(json_objects)
def test_empty_merge_patch_is_identity(source: dict) -> None:
    assert merge_patch(source, {}) == source


# ------------------------------------------------------------------------- JSON patch

DOC = {"a": {"b": [1, 2, 3], "c": "x"}, "k/e~y": 1}

JSON_PATCH_CASES = [
    ([{"op": "add", "path": "/a/d", "value": 4}], {"a": {"b": [1, 2, 3], "c": "x", "d": 4}}),
    ([{"op": "add", "path": "/a/b/1", "value": 9}], {"a": {"b": [1, 9, 2, 3], "c": "x"}}),
    ([{"op": "add", "path": "/a/b/-", "value": 9}], {"a": {"b": [1, 2, 3, 9], "c": "x"}}),
    ([{"op": "add", "path": "/a/b/3", "value": 9}], {"a": {"b": [1, 2, 3, 9], "c": "x"}}),
    ([{"op": "add", "path": "/a/c", "value": ["y"]}], {"a": {"b": [1, 2, 3], "c": ["y"]}}),
    ([{"op": "remove", "path": "/a/b/0"}], {"a": {"b": [2, 3], "c": "x"}}),
    ([{"op": "remove", "path": "/a/c"}], {"a": {"b": [1, 2, 3]}}),
    ([{"op": "replace", "path": "/a/c", "value": 5}], {"a": {"b": [1, 2, 3], "c": 5}}),
    ([{"op": "move", "from": "/a/c", "path": "/z"}], {"a": {"b": [1, 2, 3]}, "z": "x"}),
    ([{"op": "move", "from": "/a/b/0", "path": "/a/b/2"}], {"a": {"b": [2, 3, 1], "c": "x"}}),
    (
        [{"op": "copy", "from": "/a/b", "path": "/a/d"}],
        {"a": {"b": [1, 2, 3], "c": "x", "d": [1, 2, 3]}},
    ),
    ([{"op": "test", "path": "/a/c", "value": "x"}], {"a": {"b": [1, 2, 3], "c": "x"}}),
    ([{"op": "test", "path": "/a/b", "value": [1, 2.0, 3]}], {"a": {"b": [1, 2, 3], "c": "x"}}),
    (
        [
            {"op": "test", "path": "/a/c", "value": "x"},
            {"op": "replace", "path": "/a/c", "value": "y"},
        ],
        {"a": {"b": [1, 2, 3], "c": "y"}},
    ),
]


@pytest.mark.parametrize(("ops", "expected_a"), JSON_PATCH_CASES)
def test_json_patch_operations(ops: list[dict], expected_a: dict) -> None:
    original = {"a": copy.deepcopy(DOC["a"])}
    before = copy.deepcopy(original)
    assert json_patch(original, ops) == expected_a
    assert original == before


def test_json_pointer_escapes() -> None:
    doc = {"a/b": {"m~n": 1}}
    assert json_patch(doc, [{"op": "replace", "path": "/a~1b/m~0n", "value": 2}]) == {
        "a/b": {"m~n": 2}
    }
    assert json_patch(doc, [{"op": "add", "path": "/~01", "value": 0}])["~1"] == 0


def test_null_tests_an_absent_member_as_a_real_server_does() -> None:
    doc = {"metadata": {"name": "x"}}
    assert json_patch(doc, [{"op": "test", "path": "/metadata/labels", "value": None}]) == doc
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": None}])
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "test", "path": "/metadata/name", "value": None}])


def test_json_patch_replaces_the_whole_document_at_the_empty_path() -> None:
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}


FAILING_OPS = [
    {"op": "test", "path": "/a/c", "value": "other"},
    {"op": "test", "path": "/n", "value": 1},
    {"op": "test", "path": "/t", "value": 1},  # true is not 1
    {"op": "add", "path": "/missing/child", "value": 1},
    {"op": "add", "path": "/a/b/7", "value": 1},
    {"op": "add", "path": "/a/b/01", "value": 1},
    {"op": "add", "path": "a/c", "value": 1},
    {"op": "add", "path": "/a/d"},
    {"op": "remove", "path": "/a/nope"},
    {"op": "remove", "path": "/a/b/3"},
    {"op": "replace", "path": "/nope", "value": 1},
    {"op": "move", "from": "/a", "path": "/a/inner"},
    {"op": "move", "from": "/nope", "path": "/x"},
    {"op": "copy", "path": "/x"},
    {"op": "frobnicate", "path": "/a"},
    {"path": "/a"},
    {"op": "remove", "path": ""},
]


@pytest.mark.parametrize("failing", FAILING_OPS)
def test_failed_operation_is_422_and_changes_nothing(failing: dict) -> None:
    original = {"a": {"b": [1, 2, 3], "c": "x"}, "n": 2, "t": True}
    before = copy.deepcopy(original)
    ops = [{"op": "replace", "path": "/n", "value": 3}, failing]
    with pytest.raises(ApiError) as err:
        json_patch(original, ops)
    assert err.value.code == 422
    assert err.value.reason == "Invalid"
    assert err.value.message == "the server rejected our request due to an error in our request"
    assert err.value.causes and err.value.causes[0].message
    assert original == before


def test_failed_test_names_the_path_in_the_cause() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(
            {"spec": {"replicas": 1}}, [{"op": "test", "path": "/spec/replicas", "value": 2}]
        )
    cause = err.value.causes[0]
    assert cause.field == "/spec/replicas"
    assert "testing value /spec/replicas failed" in cause.message


@pytest.mark.parametrize("body", [{"op": "add"}, "x", [1], [{"op": "add", "path": 3, "value": 1}]])
def test_malformed_json_patch_is_400(body: Any) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, body)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/a", "value": 1}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(ApiError) as err:
        json_patch({"a": 1}, ops)
    assert err.value.code == 413
    assert err.value.reason == "RequestEntityTooLarge"


add_ops = st.lists(
    st.fixed_dictionaries(
        {"op": st.just("add"), "path": st.sampled_from(["/x", "/y", "/a/b/-", "/a/b/0"])},
        optional={"value": json_values},
    ).map(lambda op: {**op, "value": op.get("value")}),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(json_objects, add_ops)
def test_a_failing_test_op_anywhere_changes_nothing(doc: dict, ops: list[dict]) -> None:
    doc = {**doc, "a": {"b": [0]}}
    before = copy.deepcopy(doc)
    applied = json_patch(doc, ops)
    with pytest.raises(ApiError) as err:
        json_patch(doc, [*ops, {"op": "test", "path": "/a", "value": "never"}])
    assert err.value.code == 422
    assert doc == before
    assert json_patch(doc, ops) == applied
