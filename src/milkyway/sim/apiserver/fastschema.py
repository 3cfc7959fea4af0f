"""A compiled yes/no check for the built-in JSON schemas, for the common valid case.

``jsonschema`` walks a schema generically and costs a few hundred microseconds per pod,
most of a create's budget. Almost every object a client sends is valid, so the schema is
first compiled into nested closures that only answer "valid?"; ``jsonschema`` runs only
when that answer is no, to word the causes. The closures implement exactly the keywords
the Kubernetes definitions use (``type``, ``enum``, ``required``, ``properties``,
``additionalProperties``, ``items``, ``$ref``); a schema with any other assertion
compiles to "not sure", which sends the object to ``jsonschema`` as well, so this check
can only ever make validation faster, never more lenient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_REF_PREFIX = "#/$defs/"
_ANNOTATIONS = frozenset({"description", "format", "default", "title", "example"})
_HANDLED = frozenset(
    {"type", "enum", "required", "properties", "additionalProperties", "items", "$ref"}
)


def _never(_value: Any) -> bool:
    return False


def _always(_value: Any) -> bool:
    return True


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": _is_integer,
    "number": _is_number,
}


class SchemaCompiler:
    """Compiles nodes of one set of ``$defs`` into checks, sharing compiled definitions."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self._compiled: dict[str, Check] = {}

    def for_definition(self, name: str) -> Check:
        if name not in self._compiled:
            slot: list[Check] = []
            # Recursive definitions (JSONSchemaProps) refer to themselves: the slot is
            # filled after compiling, and the placeholder reads it at call time.
            self._compiled[name] = lambda value: slot[0](value)
            slot.append(self.compile(self.definitions[name]))
            self._compiled[name] = slot[0]
        return self._compiled[name]

    def compile(self, node: Any) -> Check:
        if node is True or node == {}:
            return _always
        if node is False:
            return _never
        if not isinstance(node, dict):
            return _never
        unknown = {k for k in node if not k.startswith("x-")} - _HANDLED - _ANNOTATIONS
        if unknown:
            return _never
        checks: list[Check] = []
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref.startswith(_REF_PREFIX):
                return _never
            name = ref[len(_REF_PREFIX) :]
            if name not in self.definitions:
                return _never
            checks.append(self._deferred(name))
        if "type" in node:
            checks.append(_type_check(node["type"]))
        if "enum" in node:
            checks.append(_enum_check(node["enum"]))
        object_check = self._object_check(node)
        if object_check is not None:
            checks.append(object_check)
        if "items" in node:
            item = self.compile(node["items"])
            checks.append(lambda v: not isinstance(v, list) or all(item(i) for i in v))
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def _deferred(self, name: str) -> Check:
        cache = self._compiled

        def check(value: Any) -> bool:
            compiled = cache.get(name)
            if compiled is None:
                compiled = self.for_definition(name)
            return compiled(value)

        return check

    def _object_check(self, node: dict[str, Any]) -> Check | None:
        has_props = "properties" in node
        has_extra = "additionalProperties" in node
        required = tuple(node.get("required") or ())
        if not (has_props or has_extra or required):
            return None
        properties = {k: self.compile(v) for k, v in (node.get("properties") or {}).items()}
        extra = self.compile(node["additionalProperties"]) if has_extra else _always
        open_ended = extra is _always

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key in required:
                if key not in value:
                    return False
            for key, item in value.items():
                prop = properties.get(key)
                if prop is not None:
                    if not prop(item):
                        return False
                elif not open_ended and not extra(item):
                    return False
            return True

        return check


def _type_check(expected: Any) -> Check:
    names = [expected] if isinstance(expected, str) else list(expected)
    checks = [_TYPE_CHECKS[n] for n in names if n in _TYPE_CHECKS]
    if len(checks) != len(names):
        return _never
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(check(v) for check in checks)


def _enum_check(allowed: Any) -> Check:
    if not isinstance(allowed, list):
        return _never
    typed = [(type(a), a) for a in allowed]
    return lambda v: any(type(v) is t and v == a for t, a in typed)
