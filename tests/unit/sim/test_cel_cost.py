"""CEL rule cost: rules too expensive for their schema are refused when the CRD is
written, and a rule that would run past the request's budget is refused before it runs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from milkyway.sim.apiserver.cel_cost import RUNTIME_BUDGET, actual_cost, estimated_cost
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.structural import StructuralSchema

NESTED_ALL = "self.items.all(x, self.items.all(y, self.items.all(z, x + y + z != '')))"


def schema(rule: str, **bounds: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": rule}],
                "properties": {"items": {"type": "array", "items": {"type": "string"}, **bounds}},
            }
        },
    }


def test_nested_all_over_an_unbounded_list_is_refused_with_the_real_message() -> None:
    with pytest.raises(ApiError) as caught:
        StructuralSchema(schema(NESTED_ALL))
    (cause,) = caught.value.causes
    assert cause.reason == "FieldValueForbidden"
    assert cause.field == "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    assert cause.message.startswith("Forbidden: estimated rule cost exceeds budget by factor of ")
    assert "adding maxItems, maxProperties, and maxLength" in cause.message


def test_max_items_bounds_the_estimate() -> None:
    StructuralSchema(schema(NESTED_ALL, maxItems=20))


def test_cheap_rules_on_unbounded_lists_are_accepted() -> None:
    StructuralSchema(schema("self.items.all(x, size(x) < 10)"))
    StructuralSchema(schema("size(self.items) <= 3"))


def test_a_rule_past_the_runtime_budget_is_refused_before_it_runs() -> None:
    structural = StructuralSchema(schema(NESTED_ALL, maxItems=60))
    obj = {"spec": {"items": [str(i) for i in range(60)]}}
    started = time.perf_counter()
    causes = structural.validate(obj)
    elapsed = time.perf_counter() - started
    assert [c.message for c in causes] == [
        'Invalid value: "object": validation failed due to running out of cost budget, no '
        "further validation rules will be run"
    ]
    assert causes[0].field == "spec"
    print(f"refused in {elapsed:.3f}s")


def test_a_rule_within_the_budget_still_runs() -> None:
    structural = StructuralSchema(schema("self.items.all(x, x != 'bad')", maxItems=10))
    assert structural.validate({"spec": {"items": ["a", "b"]}}) == []
    (cause,) = structural.validate({"spec": {"items": ["a", "bad"]}})
    assert "failed rule" in cause.message


def test_the_actual_cost_grows_with_the_data_and_stays_under_the_estimate() -> None:
    import celpy

    ast = celpy.Environment().compile(NESTED_ALL)
    bounded = schema(NESTED_ALL, maxItems=20)["properties"]["spec"]
    small = actual_cost(ast, {"items": ["a"] * 2})
    large = actual_cost(ast, {"items": ["a"] * 20})
    assert small < RUNTIME_BUDGET < large <= estimated_cost(ast, bounded)


def _per_item_rule(**item_bounds: Any) -> dict[str, Any]:
    item = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.tags.all(t, t.startsWith('a'))"}],
        "properties": {
            "tags": {"type": "array", "maxItems": 10, "items": {"type": "string"}},
        },
    }
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item, **item_bounds}},
    }


def test_a_cheap_rule_repeated_over_an_unbounded_list_exceeds_the_schema_total() -> None:
    with pytest.raises(ApiError) as caught:
        StructuralSchema(_per_item_rule())
    (cause,) = caught.value.causes
    assert cause.field == "openAPIV3Schema"
    assert cause.message.startswith(
        "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 "
        "schema exceeds budget by factor of "
    )


def test_bounding_the_list_keeps_the_total_within_budget() -> None:
    StructuralSchema(_per_item_rule(maxItems=10))
