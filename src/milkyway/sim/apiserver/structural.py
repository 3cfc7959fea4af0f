"""Structural schemas of custom resources: check, prune, default, validate.

A CRD version's ``openAPIV3Schema`` must be *structural* (a type on every node, no
``$ref``, junctors that only add value checks) so the server knows the shape of every
stored field. With that shape it does, in this order, what clients of custom resources
rely on: drop fields the schema does not know (unless
``x-kubernetes-preserve-unknown-fields``), fill in ``default`` values (also inside
defaulted objects), and validate with Kubernetes-worded causes, including
``x-kubernetes-validations`` CEL rules evaluated with ``self`` and ``oldSelf``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

import orjson

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver import formats
from milkyway.sim.apiserver.builtin_checks import check_metadata
from milkyway.sim.apiserver.cel_cost import (
    CRD_COST_LIMIT,
    RUNTIME_BUDGET,
    repetitions,
    total_over_budget_message,
)
from milkyway.sim.apiserver.cel_rules import CelRule, RuleTooCostly, compile_rule
from milkyway.sim.apiserver.errors import ApiError, Cause
from milkyway.sim.apiserver.json_values import as_object, schema_type

_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_NOT_IN_JUNCTORS = ("type", "default", "additionalProperties", "nullable", "description")
_ROOT_KEPT = ("apiVersion", "kind", "metadata")
_SUPPORTED = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
        "properties",
        "additionalProperties",
        "nullable",
        "example",
        "externalDocs",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)

Node = dict[str, Any]

# Keywords that never reject a scalar of the declared type.
_PLAIN_KEYS = frozenset(
    {"type", "description", "title", "default", "nullable", "example", "externalDocs", "enum"}
)
# Keywords that :meth:`StructuralSchema._object` and ``_array`` check themselves.
_CONTAINER_KEYS = (_PLAIN_KEYS - {"enum"}) | {
    "properties",
    "additionalProperties",
    "required",
    "maxProperties",
    "minProperties",
    "items",
    "maxItems",
    "minItems",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
_UNKNOWN: Any = object()

_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def _is_int_or_string_pattern(node: Node, key: str, index: int) -> bool:
    """The two spellings of int-or-string a real server accepts with types under a junctor:
    ``anyOf: [{type: integer}, {type: string}]`` and the same ``anyOf`` as ``allOf[0]``."""
    if key == "anyOf":
        return node["anyOf"] == _INT_OR_STRING_ANY_OF
    if key == "allOf" and index == 0:
        first = node["allOf"][0]
        return (
            isinstance(first, dict)
            and first.get("anyOf") == _INT_OR_STRING_ANY_OF
            and (len(first) == 1)
        )
    return False


_OUT_OF_BUDGET = (
    "validation failed due to running out of cost budget, no further validation rules will be run"
)


class StructuralSchema:
    """One CRD version's ``openAPIV3Schema``, checked once and then applied to objects."""

    def __init__(self, openapi_v3_schema: dict, *, field_path: str = "openAPIV3Schema") -> None:
        self.schema = copy.deepcopy(openapi_v3_schema)
        self._rules: dict[int, list[CelRule]] = {}
        self._budget = float(RUNTIME_BUDGET)
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._plain: dict[int, tuple[str, list[Any] | None] | None] = {}
        self._containers: dict[int, str | None] = {}
        causes = self.structural_causes(field_path)
        if causes:
            raise ApiError(
                422,
                "Invalid",
                "schema is not structural: " + "; ".join(f"{c.field}: {c.message}" for c in causes),
                causes=causes,
            )

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the schema, so publishers notice a changed CRD without re-reading it."""
        return hashlib.sha256(orjson.dumps(self.schema, option=orjson.OPT_SORT_KEYS)).hexdigest()

    # -- structural check -------------------------------------------------------------

    def structural_causes(self, field_path: str) -> list[Cause]:
        if not isinstance(self.schema, dict):
            return [fe.required(field_path, "must be an object schema")]
        causes: list[Cause] = []
        root_type = self.schema.get("type")
        if root_type != "object":
            causes.append(
                fe.invalid(f"{field_path}.type", root_type or "", "must be object at the root")
            )
        metadata = self.schema.get("properties", {}).get("metadata")
        if isinstance(metadata, dict):
            extra = set(metadata.get("properties", {})) - {"name", "generateName"}
            if extra or set(metadata) - {"type", "properties", "description"}:
                causes.append(
                    fe.forbidden(
                        f"{field_path}.properties[metadata]",
                        "must not specify anything other than name and generateName, "
                        "but metadata is implicitly specified",
                    )
                )
        defaults: list[tuple[Node, str]] = []
        self._check_node(self.schema, field_path, causes, in_junctor=False, defaults=defaults)
        if not causes:
            causes.extend(self._default_causes(defaults))
        total = self._rule_cost_total(self.schema, 1.0)
        if not causes and total > CRD_COST_LIMIT:
            causes.append(
                fe.forbidden(field_path, total_over_budget_message(total, CRD_COST_LIMIT))
            )
        return causes

    def _rule_cost_total(self, node: Any, times: float) -> float:
        """Every rule's estimate times how often its node can occur in one object."""
        if not isinstance(node, dict):
            return 0.0
        total = sum(rule.estimate for rule in self._rules.get(id(node), [])) * times
        for _, child in _items(node.get("properties")):
            total += self._rule_cost_total(child, times)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                total += self._rule_cost_total(node[key], times * repetitions(node, key))
        return total

    def _default_causes(self, defaults: list[tuple[Node, str]]) -> list[Cause]:
        """Defaults must already be pruned and valid, or every defaulted object would fail."""
        causes: list[Cause] = []
        for node, path in defaults:
            value = node["default"]
            unknown: list[str] = []
            _prune(copy.deepcopy(value), node, (), unknown)
            if unknown:
                causes.append(
                    fe.invalid(
                        f"{path}.default",
                        value,
                        f"must not have unknown fields: {', '.join(unknown)}",
                    )
                )
                continue
            defaulted = copy.deepcopy(value)
            _default(defaulted, node)
            found: list[Cause] = []
            self._validate(defaulted, None, node, ("default",), found)
            causes.extend(Cause(c.reason, c.message, f"{path}.{c.field}") for c in found)
        return causes

    def _check_node(
        self,
        node: Any,
        path: str,
        causes: list[Cause],
        *,
        in_junctor: bool,
        defaults: list[tuple[Node, str]],
    ) -> None:
        if not isinstance(node, dict):
            causes.append(fe.type_invalid(path, "", "must be a schema object"))
            return
        for key in node:
            if key not in _SUPPORTED:
                causes.append(fe.forbidden(f"{path}.{key}", f"{key} is not supported"))
        if "default" in node and not in_junctor:
            defaults.append((node, path))
        type_ = node.get("type")
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        if in_junctor:
            for key in _NOT_IN_JUNCTORS:
                if key in node:
                    causes.append(
                        fe.forbidden(f"{path}.{key}", "must not be specified in a nested context")
                    )
        elif type_ is None and not int_or_string and preserve is not True:
            causes.append(
                fe.required(f"{path}.type", "must not be empty for specified object fields")
            )
        if type_ is not None and type_ not in _TYPES:
            causes.append(fe.not_supported(f"{path}.type", type_, _TYPES))
        if int_or_string and type_ is not None:
            causes.append(
                fe.invalid(
                    f"{path}.type", type_, "must be empty if x-kubernetes-int-or-string is true"
                )
            )
        if preserve is False:
            causes.append(
                fe.invalid(
                    f"{path}.x-kubernetes-preserve-unknown-fields",
                    False,
                    "must be true or undefined",
                )
            )
        if node.get("x-kubernetes-embedded-resource") and type_ != "object":
            causes.append(
                fe.invalid(
                    f"{path}.type",
                    type_ or "",
                    "must be object if x-kubernetes-embedded-resource is true",
                )
            )
        if (
            "properties" in node
            and "additionalProperties" in node
            and node["additionalProperties"] is not False
        ):
            causes.append(
                fe.forbidden(
                    f"{path}.additionalProperties",
                    "additionalProperties and properties are mutual exclusive",
                )
            )
        if node.get("uniqueItems") is True:
            causes.append(
                fe.forbidden(
                    f"{path}.uniqueItems",
                    "uniqueItems cannot be set to true since the runtime complexity becomes "
                    "quadratic",
                )
            )
        if type_ == "array" and not in_junctor and not isinstance(node.get("items"), dict):
            causes.append(fe.required(f"{path}.items", "must be specified"))
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                self._patterns[pattern] = re.compile(pattern)
            except re.error as err:
                causes.append(
                    fe.invalid(
                        f"{path}.pattern",
                        pattern,
                        f"must be a valid regular expression, but isn't: {err}",
                    )
                )
        self._check_list_type(node, path, causes)
        for name, child in _items(node.get("properties")):
            self._check_node(
                child,
                f"{path}.properties[{name}]",
                causes,
                in_junctor=in_junctor,
                defaults=defaults,
            )
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                self._check_node(
                    node[key],
                    f"{path}.{key}",
                    causes,
                    in_junctor=in_junctor or key == "not",
                    defaults=defaults,
                )
        for key in ("allOf", "anyOf", "oneOf"):
            for i, child in enumerate(node.get(key) or []):
                if int_or_string and _is_int_or_string_pattern(node, key, i):
                    continue
                self._check_node(
                    child, f"{path}.{key}[{i}]", causes, in_junctor=True, defaults=defaults
                )
        rules = node.get("x-kubernetes-validations")
        if rules is not None:
            compiled: list[CelRule] = []
            for i, rule in enumerate(rules if isinstance(rules, list) else []):
                rule_path = f"{path}.x-kubernetes-validations[{i}]"
                try:
                    compiled.append(compile_rule(rule, rule_path, node))
                except RuleTooCostly as err:
                    causes.append(fe.forbidden(f"{rule_path}.rule", str(err)))
                except ValueError as err:
                    causes.append(
                        fe.invalid(f"{rule_path}.rule", as_object(rule).get("rule", ""), str(err))
                    )
            self._rules[id(node)] = compiled

    @staticmethod
    def _check_list_type(node: Node, path: str, causes: list[Cause]) -> None:
        list_type = node.get("x-kubernetes-list-type")
        if list_type is None:
            return
        if list_type not in ("atomic", "map", "set"):
            causes.append(
                fe.not_supported(
                    f"{path}.x-kubernetes-list-type", list_type, ("atomic", "map", "set")
                )
            )
            return
        items = node.get("items") if isinstance(node.get("items"), dict) else {}
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys")
            if not keys:
                causes.append(
                    fe.required(
                        f"{path}.x-kubernetes-list-map-keys",
                        "must not be empty if x-kubernetes-list-type is map",
                    )
                )
            elif items.get("type") != "object":
                causes.append(
                    fe.invalid(
                        f"{path}.items.type",
                        items.get("type", ""),
                        "must be object if parent array's x-kubernetes-list-type is map",
                    )
                )
            else:
                props = items.get("properties", {})
                required = set(items.get("required", []))
                for key in keys:
                    if key not in props:
                        causes.append(
                            fe.invalid(
                                f"{path}.x-kubernetes-list-map-keys",
                                keys,
                                f'entry "{key}" must be a property of items',
                            )
                        )
                    elif key not in required and "default" not in props[key]:
                        causes.append(
                            fe.required(
                                f"{path}.items.properties[{key}]",
                                "all map keys must be required or have a default value",
                            )
                        )
        if list_type == "set" and items.get("type") in ("object", "array"):
            causes.append(
                fe.invalid(
                    f"{path}.items.type",
                    items.get("type"),
                    "must be a scalar type if parent array's x-kubernetes-list-type is set",
                )
            )

    # -- pruning ------------------------------------------------------------------------

    def prune(self, obj: dict) -> tuple[dict, list[str]]:
        """A copy of ``obj`` without the fields the schema does not know, and their paths."""
        return self.prune_owned(copy.deepcopy(obj))

    def prune_owned(self, obj: dict) -> tuple[dict, list[str]]:
        """:meth:`prune` without the copy, for an ``obj`` nobody else holds.

        The result shares the subtrees the schema keeps whole (preserved unknown fields)
        with ``obj``, so ``obj`` must not be used afterwards.
        """
        unknown: list[str] = []
        pruned = _prune(obj, self.schema, (), unknown, root=True)
        return (pruned if isinstance(pruned, dict) else obj), unknown

    # -- defaulting ---------------------------------------------------------------------

    def default(self, obj: dict) -> dict:
        """A copy of ``obj`` with ``default`` values filled in where fields are absent."""
        return self.default_owned(copy.deepcopy(obj))

    def default_owned(self, obj: dict) -> dict:
        """:meth:`default` in place, for an ``obj`` nobody else holds; returns ``obj``."""
        _default(obj, self.schema)
        return obj

    # -- validation ---------------------------------------------------------------------

    def validate(
        self, obj: dict, old: dict | None = None, *, group: str = "", kind: str = ""
    ) -> list[Cause]:
        """Causes why ``obj`` does not satisfy the schema; ``old`` feeds ``oldSelf`` rules.

        Labels, annotations and owner references are checked as for any object; the
        syntax of ``metadata.name`` is left to the caller, which also handles
        ``generateName``.
        """
        causes: list[Cause] = []
        if not isinstance(obj, dict):
            return [fe.type_invalid("", schema_type(obj), 'must be of type object: "object"')]
        causes.extend(check_metadata(obj, group, kind, name=False))
        self._budget = float(RUNTIME_BUDGET)
        self._validate(obj, old, self.schema, (), causes, root=True)
        return causes

    def _validate(
        self,
        value: Any,
        old: Any,
        node: Node,
        path: fe.Path,
        causes: list[Cause],
        *,
        root: bool = False,
    ) -> None:
        if self._passes_plain(value, node):
            return
        kind = type(value)
        if (kind is dict or kind is list) and self._plain_container(node) == (
            "object" if kind is dict else "array"
        ):
            if kind is dict:
                self._object(
                    value, old if isinstance(old, dict) else None, node, path, causes, root=root
                )
            else:
                self._array(value, old if isinstance(old, list) else None, node, path, causes)
            return
        field = fe.render_path(path)
        if value is None:
            if not node.get("nullable"):
                expected = node.get("type") or (
                    "integer,string" if node.get("x-kubernetes-int-or-string") else ""
                )
                if expected:
                    causes.append(
                        fe.type_invalid(
                            field, "null", f'{field} in body must be of type {expected}: "null"'
                        )
                    )
            return
        if not self._type_ok(value, node, field, causes):
            return
        self._scalar_checks(value, node, field, causes)
        for key in _JUNCTORS:
            if key in node:
                self._junctor(key, value, node[key], path, causes)
        if isinstance(value, dict):
            self._object(
                value, old if isinstance(old, dict) else None, node, path, causes, root=root
            )
        elif isinstance(value, list):
            self._array(value, old if isinstance(old, list) else None, node, path, causes)
        for rule in self._rules.get(id(node), []):
            if old is None and rule.uses_old_self:
                continue
            if self._budget < 0:
                return
            typed = _typed(value, node)
            self._budget -= rule.cost(typed)
            if self._budget < 0:
                # Refused before running: the interpreter would hold the event loop.
                causes.append(fe.invalid(field, schema_type(value), _OUT_OF_BUDGET))
                return
            cause = rule.evaluate(typed, _typed(old, node), field)
            if cause is not None:
                causes.append(cause)

    def _passes_plain(self, value: Any, node: Node) -> bool:
        """Whether ``value`` is a scalar that ``node`` can only accept (see :meth:`_plain_type`)."""
        if value is None or type(value) is dict or type(value) is list:
            return False
        plain = self._plain.get(id(node), _UNKNOWN)
        if plain is _UNKNOWN:
            plain = self._plain_type(node)
        if plain is None:
            return False
        expected, enum = plain
        if enum is not None and value not in enum:
            return False
        if expected == "":
            return True
        kind = type(value)
        if kind is str:
            return expected == "string"
        if kind is bool:
            return expected == "boolean"
        if kind is int:
            return expected in ("integer", "number")
        actual = schema_type(value)
        return expected == actual or (expected == "number" and actual == "integer")

    def _plain_type(self, node: Node) -> tuple[str, list[Any] | None] | None:
        """The type (``""``: any) and enum a scalar needs to pass ``node`` unchecked, or None
        if ``node`` checks more.

        Most leaves of a large object only declare a type; recognising them once per schema
        node lets validation skip rendering their field path.
        """
        plain: tuple[str, list[Any] | None] | None = None
        enum = node.get("enum")
        if (
            node.keys() <= _PLAIN_KEYS
            and id(node) not in self._rules
            and (enum is None or isinstance(enum, list))
        ):
            declared = node.get("type")
            plain = (declared if isinstance(declared, str) else "", enum)
        self._plain[id(node)] = plain
        return plain

    def _plain_container(self, node: Node) -> str | None:
        """``"object"`` or ``"array"`` if ``node`` checks nothing of a value of that type
        beyond what :meth:`_object` or :meth:`_array` check, else None."""
        shape = self._containers.get(id(node), _UNKNOWN)
        if shape is _UNKNOWN:
            declared = node.get("type")
            shape = (
                declared
                if declared in ("object", "array")
                and node.keys() <= _CONTAINER_KEYS
                and id(node) not in self._rules
                else None
            )
            self._containers[id(node)] = shape
        return shape

    @staticmethod
    def _type_ok(value: Any, node: Node, field: str, causes: list[Cause]) -> bool:
        actual = schema_type(value)
        if node.get("x-kubernetes-int-or-string"):
            if actual in ("integer", "string"):
                return True
            causes.append(
                fe.type_invalid(
                    field, actual, f'{field} in body must be of type integer,string: "{actual}"'
                )
            )
            return False
        expected = node.get("type")
        if expected is None or expected == actual or (expected == "number" and actual == "integer"):
            return True
        causes.append(
            fe.type_invalid(
                field, actual, f'{field} in body must be of type {expected}: "{actual}"'
            )
        )
        return False

    def _scalar_checks(self, value: Any, node: Node, field: str, causes: list[Cause]) -> None:
        enum = node.get("enum")
        if isinstance(enum, list) and value not in enum:
            causes.append(fe.not_supported(field, value, enum))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            _numeric_checks(value, node, field, causes)
        if isinstance(value, str):
            max_length, min_length = node.get("maxLength"), node.get("minLength")
            if isinstance(max_length, int) and len(value) > max_length:
                causes.append(fe.too_long(field, max_length))
            if isinstance(min_length, int) and len(value) < min_length:
                causes.append(
                    fe.invalid(
                        field, value, f"{field} in body should be at least {min_length} chars long"
                    )
                )
            pattern = node.get("pattern")
            if isinstance(pattern, str) and not self._patterns[pattern].search(value):
                causes.append(fe.invalid(field, value, f"{field} in body should match '{pattern}'"))
            fmt = node.get("format")
            if isinstance(fmt, str) and not formats.is_valid(fmt, value):
                causes.append(
                    fe.invalid(field, value, f'{field} in body must be of type {fmt}: "{value}"')
                )

    def _junctor(
        self, key: str, value: Any, branches: Any, path: fe.Path, causes: list[Cause]
    ) -> None:
        field = fe.render_path(path)

        def passes(branch: Any) -> bool:
            found: list[Cause] = []
            if isinstance(branch, dict):
                self._validate(value, None, branch, path, found)
            return not found

        if key == "not":
            if passes(branches):
                causes.append(
                    fe.invalid(field, value, f"{field} in body must not validate the schema (not)")
                )
            return
        results = [passes(b) for b in branches or []]
        if key == "allOf":
            for branch in branches or []:
                if isinstance(branch, dict):
                    self._validate(value, None, branch, path, causes)
        elif key == "anyOf" and not any(results):
            causes.append(
                fe.invalid(
                    field, value, f"{field} in body must validate at least one schema (anyOf)"
                )
            )
        elif key == "oneOf" and results.count(True) != 1:
            causes.append(
                fe.invalid(
                    field, value, f"{field} in body must validate one and only one schema (oneOf)"
                )
            )

    def _object(
        self,
        value: dict,
        old: dict | None,
        node: Node,
        path: fe.Path,
        causes: list[Cause],
        *,
        root: bool,
    ) -> None:
        for name in node.get("required") or []:
            if value.get(name) is None and not (root and name in _ROOT_KEPT):
                causes.append(fe.required(fe.render_path((*path, name))))
        count = len(value)
        max_props, min_props = node.get("maxProperties"), node.get("minProperties")
        if isinstance(max_props, int) and count > max_props:
            causes.append(fe.too_many(fe.render_path(path), count, max_props))
        if isinstance(min_props, int) and count < min_props:
            field = fe.render_path(path)
            causes.append(
                fe.invalid(
                    field, count, f"{field} in body should have at least {min_props} properties"
                )
            )
        if node.get("x-kubernetes-embedded-resource"):
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    causes.append(fe.required(fe.render_path((*path, key)), "must not be empty"))
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        old = old or {}
        if not isinstance(extra, dict):
            extra = None
        for key, child in value.items():
            if root and key in _ROOT_KEPT and key not in properties:
                continue
            child_node = properties.get(key, extra)
            if child_node is not None and not self._passes_plain(child, child_node):
                self._validate(child, old.get(key), child_node, (*path, key), causes)

    def _array(
        self, value: list, old: list | None, node: Node, path: fe.Path, causes: list[Cause]
    ) -> None:
        max_items, min_items = node.get("maxItems"), node.get("minItems")
        if isinstance(max_items, int) and len(value) > max_items:
            causes.append(fe.too_many(fe.render_path(path), len(value), max_items))
        if isinstance(min_items, int) and len(value) < min_items:
            field = fe.render_path(path)
            causes.append(
                fe.invalid(
                    field, len(value), f"{field} in body should have at least {min_items} items"
                )
            )
        items = node.get("items")
        if isinstance(items, dict):
            old_by_key = _old_list_items(node, old)
            for i, item in enumerate(value):
                if not self._passes_plain(item, items):
                    self._validate(item, old_by_key(i, item), items, (*path, i), causes)
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    causes.append(fe.duplicate(fe.render_path((*path, i)), item))
                else:
                    seen.append(item)
        elif list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            seen_keys: set[tuple[str, ...]] = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                key = tuple(repr(item.get(k)) for k in keys)
                if key in seen_keys:
                    shown = {k: item.get(k) for k in keys}
                    causes.append(
                        Cause(
                            fe.DUPLICATE,
                            f"Duplicate value: {_go_map_any(shown)}",
                            fe.render_path((*path, i)),
                        )
                    )
                seen_keys.add(key)


def _items(value: Any) -> list[tuple[str, Any]]:
    return list(value.items()) if isinstance(value, dict) else []


def _go_map_any(values: dict) -> str:
    inner = ", ".join(f'"{k}":{fe.show_value(v)}' for k, v in values.items())
    return f"map[string]interface {{}}{{{inner}}}"


def _numeric_checks(value: float, node: Node, field: str, causes: list[Cause]) -> None:
    minimum, maximum = node.get("minimum"), node.get("maximum")
    if isinstance(minimum, (int, float)):
        if node.get("exclusiveMinimum") is True and value <= minimum:
            causes.append(
                fe.invalid(field, value, f"{field} in body should be greater than {_num(minimum)}")
            )
        elif value < minimum:
            causes.append(
                fe.invalid(
                    field,
                    value,
                    f"{field} in body should be greater than or equal to {_num(minimum)}",
                )
            )
    if isinstance(maximum, (int, float)):
        if node.get("exclusiveMaximum") is True and value >= maximum:
            causes.append(
                fe.invalid(field, value, f"{field} in body should be less than {_num(maximum)}")
            )
        elif value > maximum:
            causes.append(
                fe.invalid(
                    field, value, f"{field} in body should be less than or equal to {_num(maximum)}"
                )
            )
    multiple = node.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0 and (value / multiple) % 1 != 0:
        causes.append(
            fe.invalid(field, value, f"{field} in body should be a multiple of {_num(multiple)}")
        )


def _num(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _old_list_items(node: Node, old: list | None) -> Callable[[int, Any], Any]:
    """How to find an item's previous value: by map keys for map lists, else none.

    Transition rules (``oldSelf``) only apply where an item's identity is defined, which
    for lists is the ``x-kubernetes-list-map-keys`` of a map list.
    """
    keys = node.get("x-kubernetes-list-map-keys") or []
    if node.get("x-kubernetes-list-type") != "map" or not old or not keys:
        return lambda _index, _item: None
    previous = {
        tuple(repr(as_object(o).get(k)) for k in keys): o for o in old if isinstance(o, dict)
    }
    return lambda _index, item: previous.get(tuple(repr(as_object(item).get(k)) for k in keys))


def _typed(value: Any, node: Any) -> Any:
    """``value`` as CEL sees it: integers in ``number`` fields are doubles."""
    if not isinstance(node, dict):
        return value
    if node.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        properties = node.get("properties") or {}
        extra = node.get("additionalProperties")
        return {
            k: _typed(v, properties.get(k, extra if isinstance(extra, dict) else None))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_typed(item, node.get("items")) for item in value]
    return value


def _prune(value: Any, node: Any, path: fe.Path, unknown: list[str], *, root: bool = False) -> Any:
    """``value`` without unknown fields. Plain dicts and lists (the caller's own) are pruned
    in place; other mappings and sequences are rebuilt as plain ones."""
    if not isinstance(node, dict):
        return value
    if isinstance(value, dict):
        if node.get("x-kubernetes-embedded-resource") or root:
            kept = {k: value[k] for k in _ROOT_KEPT if k in value}
        else:
            kept = {}
        properties = node.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        extra = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        out: dict[str, Any] = value if type(value) is dict else dict(value)
        dropped: list[str] = []
        for key, child in out.items():
            if key in kept and not (key in properties and key != "metadata"):
                continue
            if key in properties:
                child_node = properties[key]
            elif isinstance(extra, dict):
                child_node = extra
            elif preserve or extra is True:
                continue
            else:
                unknown.append(fe.render_path((*path, key)))
                dropped.append(key)
                continue
            if isinstance(child, dict | list) and isinstance(child_node, dict):
                out[key] = _prune(child, child_node, (*path, key), unknown)
        for key in dropped:
            del out[key]
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        items = node["items"]
        listed: list[Any] = value if type(value) is list else list(value)
        for i, item in enumerate(listed):
            if isinstance(item, dict | list):
                listed[i] = _prune(item, items, (*path, i), unknown)
        return listed
    return value


def _default(value: Any, node: Any) -> None:
    if not isinstance(node, dict):
        return
    if isinstance(value, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for key, child in properties.items():
                if not isinstance(child, dict):
                    continue
                if key in value and value[key] is None and not child.get("nullable"):
                    del value[key]
                if key not in value and "default" in child:
                    value[key] = copy.deepcopy(child["default"])
        extra = node.get("additionalProperties")
        for key, child_value in value.items():
            if not isinstance(child_value, dict | list):
                continue  # nothing inside a scalar to default
            if isinstance(properties, dict) and key in properties:
                _default(child_value, properties[key])
            elif isinstance(extra, dict):
                _default(child_value, extra)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        items = node["items"]
        for item in value:
            if isinstance(item, dict | list):
                _default(item, items)
