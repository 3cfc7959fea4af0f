"""CRD structural schemas: structural check, pruning, defaulting, validation, CEL rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.validation import StructuralSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 9},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": True},
                "since": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "tags": {
                    "type": "array",
                    "maxItems": 3,
                    "minItems": 1,
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "members": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["zone"],
                    "items": {
                        "type": "object",
                        "required": ["zone"],
                        "properties": {
                            "zone": {"type": "string"},
                            "replicas": {"type": "integer", "default": 1},
                        },
                    },
                },
                "resources": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "cpu": {"type": "string", "default": "100m"},
                        "limits": {
                            "type": "object",
                            "default": {},
                            "properties": {"memory": {"type": "string", "default": "1Gi"}},
                        },
                    },
                },
                "config": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
            "x-kubernetes-validations": [
                {"rule": "!has(self.ratio) || self.ratio < 10.0", "message": "ratio too big"},
                {
                    "rule": "self.size >= oldSelf.size",
                    "message": "size may not shrink",
                    "reason": "FieldValueForbidden",
                },
            ],
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"size": 3, **spec},
    }


@pytest.fixture(scope="module")
def schema() -> StructuralSchema:
    return StructuralSchema(SCHEMA)


def test_prune_drops_unknown_fields_and_reports_their_paths(schema: StructuralSchema) -> None:
    obj = widget(bogus=1, members=[{"zone": "a", "x": 2}], extra={"any": {"thing": 1}})
    obj["status"] = {"free": "form"}
    obj["top"] = True
    obj["metadata"]["labels"] = {"a": "b"}
    pruned, unknown = schema.prune(obj)
    assert unknown == ["spec.bogus", "spec.members[0].x", "top"]
    assert pruned["spec"]["members"] == [{"zone": "a"}]
    assert pruned["spec"]["extra"] == {"any": {"thing": 1}}
    assert pruned["status"] == {"free": "form"}
    assert pruned["metadata"] == obj["metadata"]
    assert "bogus" in obj["spec"], "prune must not mutate its input"


def test_embedded_resource_keeps_type_meta(schema: StructuralSchema) -> None:
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    pruned, unknown = schema.prune(widget(template=template))
    assert pruned["spec"]["template"] == template
    assert unknown == []


def test_default_fills_nested_objects_like_the_api_server(schema: StructuralSchema) -> None:
    defaulted = schema.default(widget(members=[{"zone": "a"}, {"zone": "b", "replicas": 3}]))
    spec = defaulted["spec"]
    assert spec["mode"] == "safe"
    assert spec["resources"] == {"cpu": "100m", "limits": {"memory": "1Gi"}}
    assert spec["members"] == [{"zone": "a", "replicas": 1}, {"zone": "b", "replicas": 3}]


def test_default_replaces_non_nullable_nulls_and_keeps_nullable_ones(
    schema: StructuralSchema,
) -> None:
    spec = schema.default(widget(mode=None, note=None, name=None))["spec"]
    assert spec["mode"] == "safe"
    assert spec["note"] is None
    assert "name" not in spec


def test_valid_object_has_no_causes(schema: StructuralSchema) -> None:
    obj = widget(
        ratio=0.5,
        name="abc",
        port="http",
        since="2026-01-02T03:04:05Z",
        tags=["a", "b"],
        members=[{"zone": "a"}, {"zone": "b"}],
        config={"k": "v"},
        template={"apiVersion": "v1", "kind": "Pod"},
    )
    assert schema.validate(schema.default(obj)) == []


CASES = [
    (
        "size",
        "ten",
        "FieldValueTypeInvalid",
        'Invalid value: "string": spec.size in body must be of type integer: "string"',
    ),
    (
        "size",
        0,
        "FieldValueInvalid",
        "Invalid value: 0: spec.size in body should be greater than or equal to 1",
    ),
    (
        "size",
        10,
        "FieldValueInvalid",
        "Invalid value: 10: spec.size in body should be less than or equal to 9",
    ),
    (
        "ratio",
        0,
        "FieldValueInvalid",
        "Invalid value: 0: spec.ratio in body should be greater than 0",
    ),
    (
        "mode",
        "slow",
        "FieldValueNotSupported",
        'Unsupported value: "slow": supported values: "fast", "safe"',
    ),
    (
        "name",
        "a1",
        "FieldValueInvalid",
        "Invalid value: \"a1\": spec.name in body should match '^[a-z]+$'",
    ),
    (
        "name",
        "a",
        "FieldValueInvalid",
        'Invalid value: "a": spec.name in body should be at least 2 chars long',
    ),
    ("name", "abcdef", "FieldValueTooLong", "Too long: may not be more than 5 bytes"),
    (
        "port",
        1.5,
        "FieldValueTypeInvalid",
        'Invalid value: "number": spec.port in body must be of type integer,string: "number"',
    ),
    (
        "since",
        "yesterday",
        "FieldValueInvalid",
        'Invalid value: "yesterday": spec.since in body must be of type date-time: "yesterday"',
    ),
    ("tags", ["a", "b", "c", "d"], "FieldValueTooMany", "Too many: 4: must have at most 3 items"),
    (
        "tags",
        [],
        "FieldValueInvalid",
        "Invalid value: 0: spec.tags in body should have at least 1 items",
    ),
    (
        "config",
        {"k": 1},
        "FieldValueTypeInvalid",
        'Invalid value: "integer": spec.config.k in body must be of type string: "integer"',
    ),
    ("ratio", 11.5, "FieldValueInvalid", 'Invalid value: "object": ratio too big'),
    (
        "mode",
        None,
        "FieldValueTypeInvalid",
        'Invalid value: "null": spec.mode in body must be of type string: "null"',
    ),
]


@pytest.mark.parametrize(("key", "value", "reason", "message"), CASES)
def test_invalid_values_get_kubernetes_causes(
    schema: StructuralSchema, key: str, value: Any, reason: str, message: str
) -> None:
    causes = schema.validate(widget(**{key: value}))
    assert [(c.reason, c.message) for c in causes] == [(reason, message)]


def test_required_and_list_uniqueness(schema: StructuralSchema) -> None:
    obj = widget(tags=["a", "a"], members=[{"zone": "a"}, {"zone": "a"}, {"replicas": 1}])
    del obj["spec"]["size"]
    causes = [(c.reason, c.field, c.message) for c in schema.validate(obj)]
    assert causes == [
        ("FieldValueRequired", "spec.size", "Required value"),
        ("FieldValueDuplicate", "spec.tags[1]", 'Duplicate value: "a"'),
        ("FieldValueRequired", "spec.members[2].zone", "Required value"),
        (
            "FieldValueDuplicate",
            "spec.members[1]",
            'Duplicate value: map[string]interface {}{"zone":"a"}',
        ),
    ]


def test_embedded_resource_needs_api_version_and_kind(schema: StructuralSchema) -> None:
    causes = schema.validate(widget(template={"metadata": {}}))
    assert [c.field for c in causes] == ["spec.template.apiVersion", "spec.template.kind"]


def test_transition_rules_use_old_self_only_on_update(schema: StructuralSchema) -> None:
    assert schema.validate(widget(size=2)) == []
    causes = schema.validate(widget(size=2), widget(size=5))
    assert [(c.reason, c.field, c.message) for c in causes] == [
        ("FieldValueForbidden", "spec", "Forbidden: size may not shrink")
    ]


def test_object_metadata_of_custom_resources_is_checked(schema: StructuralSchema) -> None:
    obj = widget()
    obj["metadata"]["labels"] = {"app": "-x"}
    obj["metadata"]["name"] = "W_1"
    causes = schema.validate(obj, group="example.com", kind="Widget")
    assert [(c.reason, c.field) for c in causes] == [("FieldValueInvalid", "metadata.labels")]


NOT_STRUCTURAL = [
    (
        {"type": "object", "properties": {"spec": {"properties": {}}}},
        "openAPIV3Schema.properties[spec].type",
        "Required value: must not be empty for specified object fields",
    ),
    (
        {"type": "string"},
        "openAPIV3Schema.type",
        'Invalid value: "string": must be object at the root',
    ),
    (
        {"type": "object", "properties": {"a": {"type": "array"}}},
        "openAPIV3Schema.properties[a].items",
        "Required value: must be specified",
    ),
    (
        {"type": "object", "properties": {"a": {"type": "object", "$ref": "#/definitions/x"}}},
        "openAPIV3Schema.properties[a].$ref",
        "Forbidden: $ref is not supported",
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "integer", "x-kubernetes-int-or-string": True}},
        },
        "openAPIV3Schema.properties[a].type",
        'Invalid value: "integer": must be empty if x-kubernetes-int-or-string is true',
    ),
    (
        {"type": "object", "anyOf": [{"type": "object"}]},
        "openAPIV3Schema.anyOf[0].type",
        "Forbidden: must not be specified in a nested context",
    ),
    (
        {
            "type": "object",
            "properties": {
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
            },
        },
        "openAPIV3Schema.properties[metadata]",
        "Forbidden: must not specify anything other than name and generateName, but metadata is "
        "implicitly specified",
    ),
    (
        {"type": "object", "x-kubernetes-validations": [{"rule": "self.a =="}]},
        "openAPIV3Schema.x-kubernetes-validations[0].rule",
        None,
    ),
]


@pytest.mark.parametrize(("schema", "field", "message"), NOT_STRUCTURAL)
def test_non_structural_schemas_are_rejected(
    schema: dict[str, Any], field: str, message: str | None
) -> None:
    with pytest.raises(ApiError) as info:
        StructuralSchema(schema)
    assert info.value.code == 422
    assert [c.field for c in info.value.causes] == [field]
    if message is not None:
        assert info.value.causes[0].message == message
    else:
        assert "compilation failed" in info.value.causes[0].message


INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


@pytest.mark.parametrize(
    "port",
    [
        {"x-kubernetes-int-or-string": True, "anyOf": INT_OR_STRING_ANY_OF},
        {
            "x-kubernetes-int-or-string": True,
            "allOf": [{"anyOf": INT_OR_STRING_ANY_OF}, {"pattern": "^[a-z0-9]+$"}],
        },
    ],
    ids=["anyOf", "allOf-anyOf"],
)
def test_int_or_string_spelled_with_typed_any_of_is_structural(port: dict[str, Any]) -> None:
    schema = StructuralSchema(
        {"type": "object", "properties": {"spec": {"type": "object", "properties": {"p": port}}}}
    )
    for good in (8080, "http"):
        assert schema.validate({**widget(), "spec": {"p": good}}) == []
    causes = schema.validate({**widget(), "spec": {"p": True}})
    assert causes and {c.field for c in causes} == {"spec.p"}


def test_typed_any_of_without_int_or_string_is_not_structural() -> None:
    with pytest.raises(ApiError) as info:
        StructuralSchema({"type": "object", "anyOf": INT_OR_STRING_ANY_OF})
    assert [c.field for c in info.value.causes] == [
        "openAPIV3Schema.anyOf[0].type",
        "openAPIV3Schema.anyOf[1].type",
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["spec", "size", "mode", "members", "zone", "resources", "x", "tags"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(spec=json_values, top=st.dictionaries(st.text(max_size=4), json_values, max_size=3))
def test_prune_default_validate_never_raise_and_are_idempotent(spec: Any, top: dict) -> None:
    schema = StructuralSchema(SCHEMA)
    obj = {**top, "apiVersion": "example.com/v1", "kind": "Widget", "spec": spec}
    original = copy.deepcopy(obj)
    pruned, _ = schema.prune(obj)
    again, unknown_again = schema.prune(pruned)
    assert again == pruned
    assert unknown_again == []
    defaulted = schema.default(pruned)
    assert schema.default(defaulted) == defaulted
    schema.validate(defaulted)
    schema.validate(defaulted, pruned)
    assert obj == original


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}},
            (
                "openAPIV3Schema.properties[a].default",
                'Invalid value: "string": default in body must be of type integer: "string"',
            ),
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "object",
                        "default": {"b": 1, "c": 2},
                        "properties": {"b": {"type": "integer"}},
                    }
                },
            },
            (
                "openAPIV3Schema.properties[a].default",
                'Invalid value: "object": must not have unknown fields: c',
            ),
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "object",
                        "default": {},
                        "required": ["b"],
                        "properties": {"b": {"type": "integer"}},
                    }
                },
            },
            ("openAPIV3Schema.properties[a].default.b", "Required value"),
        ),
    ],
)
def test_defaults_must_be_pruned_and_valid(schema: dict[str, Any], expected: tuple) -> None:
    with pytest.raises(ApiError) as info:
        StructuralSchema(schema)
    assert [(c.field, c.message) for c in info.value.causes] == [expected]


def test_nested_defaults_make_a_default_valid() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {
                "type": "object",
                "default": {},
                "required": ["b"],
                "properties": {"b": {"type": "integer", "default": 3}},
            }
        },
    }
    assert StructuralSchema(schema).default({})["a"] == {"b": 3}
