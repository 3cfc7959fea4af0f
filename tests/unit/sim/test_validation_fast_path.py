"""Validation that skips simple schema nodes reports exactly what full validation reports.

A schema node carrying ``x-kubernetes-validations: []`` is never treated as simple, so the
same schema with that key on every node is a reference that always takes the full path.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.structural import StructuralSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer"},
                "ratio": {"type": "number", "nullable": True},
                "on": {"type": "boolean"},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "set": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "integer"},
                },
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "maxProperties": 2,
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "any": {"x-kubernetes-preserve-unknown-fields": True},
            },
        }
    },
}


def _with_empty_rules(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _with_empty_rules(v) for k, v in node.items()}
        if "type" in node or "x-kubernetes-preserve-unknown-fields" in node:
            out["x-kubernetes-validations"] = []
        return out
    if isinstance(node, list):
        return [_with_empty_rules(v) for v in node]
    return node


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["a", "b", "c"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "a"]), inner, max_size=3)
    ),
    max_leaves=6,
)
specs = st.fixed_dictionaries(
    {},
    optional={
        key: st.one_of(scalars, values)
        for key in [
            "name",
            "count",
            "ratio",
            "on",
            "mode",
            "tags",
            "set",
            "labels",
            "free",
            "any",
            "zz",
        ]
    },
)

FAST = StructuralSchema(SCHEMA)
FULL = StructuralSchema(_with_empty_rules(SCHEMA))


@settings(max_examples=400, deadline=None)
@given(specs)
@example({"mode": "c", "count": 1.5, "on": 1})
@example({"tags": ["a", 1, "b"], "labels": {"x": 1}, "ratio": None, "count": True})
def test_fast_and_full_validation_agree(spec: dict[str, Any]) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {}, "spec": spec}
    fast = [(c.reason, c.message, c.field) for c in FAST.validate(obj)]
    full = [(c.reason, c.message, c.field) for c in FULL.validate(obj)]
    assert fast == full


def test_the_reference_schema_takes_the_full_path() -> None:
    """Guard for the test above: the reference must not be recognised as simple."""
    name_node = FULL.schema["properties"]["spec"]["properties"]["name"]
    assert not FULL._passes_plain("a", name_node)
    assert FAST._passes_plain("a", FAST.schema["properties"]["spec"]["properties"]["name"])
