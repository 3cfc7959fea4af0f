"""Validation of objects before they are stored.

Built-in objects are checked twice, as the real API server does: structurally against the
Kubernetes JSON schema of their kind (types, required fields, enums, and — with strict
field validation — unknown fields), then semantically by the per-kind rules of
:mod:`builtin_checks` (name syntax, labels, unique container names, selectors matching
template labels…). Custom resources go through :class:`StructuralSchema`; the CRD object
itself through :func:`validate_crd`.

The schema checks use ``jsonschema`` with one validator compiled per kind and cached per
:class:`BuiltinSchemas`, behind a compiled yes/no check (:mod:`fastschema`) that lets
valid objects — nearly all of them — skip it, because creates must stay cheap.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.builtin_checks import check_semantics
from milkyway.sim.apiserver.crd_validation import validate_crd
from milkyway.sim.apiserver.errors import ApiError, Cause, bad_request
from milkyway.sim.apiserver.fastschema import Check, SchemaCompiler
from milkyway.sim.apiserver.json_values import schema_type
from milkyway.sim.apiserver.schemas import BuiltinSchemas, GroupVersionKind
from milkyway.sim.apiserver.structural import StructuralSchema

__all__ = [
    "StructuralSchema",
    "split_api_version",
    "strict_decoding_error",
    "validate_builtin",
    "validate_crd",
]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def validate_builtin(obj: dict, schemas: BuiltinSchemas, *, strict: bool = True) -> list[Cause]:
    """Causes why the built-in object ``obj`` is invalid (empty when it is valid).

    With ``strict``, fields the kind does not define are causes too (see
    :func:`milkyway.sim.apiserver.fielderrors.is_unknown_field` and
    :func:`strict_decoding_error` for how the real server reports those).
    """
    if not isinstance(obj, dict):
        return [fe.type_invalid("", schema_type(obj), 'must be of type object: "object"')]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    causes: list[Cause] = []
    if not isinstance(api_version, str) or not api_version:
        causes.append(fe.required("apiVersion"))
    if not isinstance(kind, str) or not kind:
        causes.append(fe.required("kind"))
    if causes:
        return causes
    group, version = split_api_version(api_version)
    compiled = _validator(schemas, (group, version, kind), strict)
    if compiled is None:
        return [fe.invalid("kind", kind, f'no built-in kind "{kind}" in "{api_version}"')]
    quick, validator = compiled
    causes = [] if quick(obj) else _schema_causes(validator, obj)
    causes.extend(check_semantics(obj, group, kind))
    return _deduplicated(causes)


def strict_decoding_error(kind: str, api_version: str, unknown: list[Cause]) -> ApiError:
    """The 400 the real server answers for unknown fields under ``fieldValidation=Strict``."""
    fields = ", ".join(c.message for c in unknown)
    return bad_request(
        f'{kind} in version "{split_api_version(api_version)[1]}" cannot be handled as a '
        f"{kind}: strict decoding error: {fields}"
    )


def _deduplicated(causes: list[Cause]) -> list[Cause]:
    seen: set[Cause] = set()
    out = []
    for cause in causes:
        if cause not in seen:
            seen.add(cause)
            out.append(cause)
    return out


def _schema_causes(validator: jsonschema.protocols.Validator, obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    for error in validator.iter_errors(obj):
        causes.extend(_to_causes(error))
    return causes


def _to_causes(error: ValidationError) -> list[Cause]:
    path = tuple(error.absolute_path)
    keys = _map_key_positions(error)
    field = fe.render_path(path, keys)
    rule, expected, value = error.validator, error.validator_value, error.instance
    if rule == "required":
        assert isinstance(value, dict)
        return [
            fe.required(fe.render_path((*path, name), keys))
            for name in expected
            if value.get(name) is None
        ][:1]
    if rule == "additionalProperties" and expected is False:
        known = error.schema.get("properties", {})
        return [fe.unknown_field(fe.render_path((*path, k), keys)) for k in value if k not in known]
    if rule == "type":
        wanted = [t for t in ([expected] if isinstance(expected, str) else expected) if t != "null"]
        actual = schema_type(value)
        return [
            fe.type_invalid(
                field, actual, f'{field} in body must be of type {" or ".join(wanted)}: "{actual}"'
            )
        ]
    if rule == "enum":
        return [fe.not_supported(field, value, expected)]
    return [fe.invalid(field, value, error.message)]


Compiled = tuple[Check, jsonschema.protocols.Validator]


def _map_key_positions(error: ValidationError) -> frozenset[int]:
    """Which steps of the error's instance path are map keys (``labels[app]``).

    The schema path says it: a step through ``additionalProperties`` enters a map value,
    a step through ``properties``/``items`` a field or an index.
    """
    schema_path = list(error.absolute_schema_path)
    positions: set[int] = set()
    depth, i = 0, 0
    while i < len(schema_path):
        token = schema_path[i]
        if token == "properties" and i + 1 < len(schema_path):
            depth += 1
            i += 2
            continue
        if token == "additionalProperties" and i + 1 < len(schema_path):
            positions.add(depth)
            depth += 1
        elif token == "items" and i + 1 < len(schema_path):
            depth += 1
        i += 1
    return frozenset(p for p in positions if p < len(error.absolute_path))


_PREPARED: weakref.WeakKeyDictionary[BuiltinSchemas, dict[bool, SchemaCompiler]] = (
    weakref.WeakKeyDictionary()
)
_VALIDATORS: weakref.WeakKeyDictionary[
    BuiltinSchemas, dict[tuple[GroupVersionKind, bool], Compiled | None]
] = weakref.WeakKeyDictionary()


def _validator(schemas: BuiltinSchemas, gvk: GroupVersionKind, strict: bool) -> Compiled | None:
    """The quick check and the ``jsonschema`` validator of one kind, compiled once."""
    cache = _VALIDATORS.setdefault(schemas, {})
    key = (gvk, strict)
    if key not in cache:
        name = schemas.definition_name(gvk)
        if name is None:
            cache[key] = None
        else:
            compiler = _prepared(schemas, strict)
            root = {"$defs": compiler.definitions, "$ref": f"#/$defs/{name}"}
            cache[key] = (compiler.for_definition(name), jsonschema.Draft202012Validator(root))
    return cache[key]


def _prepared(schemas: BuiltinSchemas, strict: bool) -> SchemaCompiler:
    """The definitions made fit for validation (once per schemas and strictness)."""
    variants = _PREPARED.setdefault(schemas, {})
    if strict not in variants:
        definitions = copy.deepcopy(schemas.definitions)
        for definition in definitions.values():
            _prepare_node(definition, strict)
        variants[strict] = SchemaCompiler(definitions)
    return variants[strict]


def _prepare_node(node: dict[str, Any], strict: bool) -> None:
    """Close objects for strict decoding and turn scalar ``oneOf`` unions into type lists.

    ``IntOrString`` and ``Quantity`` are ``oneOf`` of two nullable scalars, which a
    ``null`` satisfies twice and so would fail; a type list says what is meant.
    """
    branches = node.get("oneOf")
    if isinstance(branches, list) and all(set(b) == {"type"} for b in branches):
        types: list[str] = []
        for branch in branches:
            for t in [branch["type"]] if isinstance(branch["type"], str) else branch["type"]:
                if t not in types:
                    types.append(t)
        del node["oneOf"]
        node["type"] = types
    if strict and "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for child in _subschemas(node):
        _prepare_node(child, strict)


def _subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    children = list(node.get("properties", {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            children.append(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        children.extend(node.get(key, []))
    return children
