"""Editing an encoded field set gives exactly what re-encoding the changed set gives."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver import fields_delta
from milkyway.sim.apiserver.apply import record_update
from milkyway.sim.apiserver.json_values import json_copy
from milkyway.sim.apiserver.managed_fields import decode_fields, encode_fields

element = st.one_of(
    st.tuples(st.just("f"), st.sampled_from(["a", "b", "c", "spec", "status"])),
    st.tuples(st.just("k"), st.sampled_from(['{"name":"x"}', '{"name":"y"}'])),
    st.tuples(st.just("v"), st.sampled_from(['"p"', "1"])),
    st.tuples(st.just("i"), st.integers(0, 12)),
)
path = st.lists(element, min_size=1, max_size=4).map(tuple)
field_sets = st.sets(path, max_size=25)


@settings(max_examples=300, deadline=None)
@given(field_sets, field_sets, field_sets)
def test_changed_tree_equals_encoding_the_changed_set(
    start: set[Any], removed: set[Any], added: set[Any]
) -> None:
    tree = encode_fields(start)
    before = orjson.dumps(tree)
    changed = fields_delta.changed_tree(tree, removed, added)
    expected = encode_fields((start - removed) | added)
    assert changed is not None
    assert orjson.dumps(changed) == orjson.dumps(expected)
    assert decode_fields(changed) == (start - removed) | added
    assert orjson.dumps(tree) == before, "the input tree must not change"


def test_a_tree_not_in_canonical_form_is_left_to_the_slow_path() -> None:
    tree = {"f:b": {}, "f:a": {}}  # canonical order is f:a first
    assert fields_delta.changed_tree(tree, set(), {(("f", "c"),)}) is None
    assert fields_delta.changed_tree(tree, set(), {(("f", "a"),)}) is tree


SORTED = orjson.OPT_SORT_KEYS

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string"},
                "nodes": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
                    },
                },
            },
        },
    },
}

scalars = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["x", "y"]), st.booleans())
trees = st.recursive(
    scalars,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=3),
    max_leaves=12,
)
statuses = st.fixed_dictionaries(
    {},
    optional={
        "phase": st.sampled_from(["Pending", "Running"]),
        "nodes": st.dictionaries(st.sampled_from(["n1", "n2", "n3"]), trees, max_size=3),
        "items": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["p", "q", "r"]), "n": scalars}),
            max_size=3,
            unique_by=lambda item: item["name"],
        ),
    },
)


def _run(status: dict[str, Any], managed: list[Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "r", "namespace": "default"}
    if managed is not None:
        metadata["managedFields"] = managed
    return {
        "apiVersion": "example.com/v1",
        "kind": "Run",
        "metadata": metadata,
        "spec": {"flow": "f"},
        "status": status,
    }


def _shuffled(managed: list[Any]) -> list[Any]:
    """The same entries with every fieldsV1 object's keys in reverse order."""

    def reverse(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        return {k: reverse(node[k]) for k in reversed(list(node))}

    return [{**entry, "fieldsV1": reverse(entry.get("fieldsV1"))} for entry in managed]


@settings(max_examples=150, deadline=None)
@given(st.lists(statuses, min_size=2, max_size=5), st.booleans())
def test_status_writes_record_what_decoding_every_entry_records(
    writes: list[dict[str, Any]], send_back: bool
) -> None:
    """A run of status writes by two managers, once with canonical managedFields (edited as
    trees) and once with the same entries in another key order (decoded and re-encoded):
    the recorded managedFields must hold the same field sets."""
    fast: dict[str, Any] = _run({}, None)
    slow: dict[str, Any] = _run({}, None)
    for index, status in enumerate(writes):
        manager = "engine" if index % 3 else "other"
        options: dict[str, Any] = {
            "manager": manager,
            "operation": "Update",
            "now": f"2026-01-01T00:00:{index:02d}Z",
            "subresource": "status",
            "schema": STATUS_SCHEMA,
        }
        fast_managed = fast["metadata"].get("managedFields")
        slow_managed = slow["metadata"].get("managedFields")
        fast_new = _run(json_copy(status), json_copy(fast_managed) if send_back else None)
        slow_new = _run(
            json_copy(status),
            _shuffled(slow_managed) if send_back and slow_managed else None,
        )
        if not send_back and slow_managed:
            slow = {
                **slow,
                "metadata": {**slow["metadata"], "managedFields": _shuffled(slow_managed)},
            }
        fast = record_update(fast, fast_new, owned=True, **options)
        slow = record_update(slow, slow_new, **options)
        assert orjson.dumps(fast, option=SORTED) == orjson.dumps(slow, option=SORTED)
