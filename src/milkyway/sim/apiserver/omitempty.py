"""Empty maps and lists of built-in objects are not stored, as on a real server.

The Go types of built-in objects tag their optional maps and slices ``omitempty``, and the
server stores them as protobuf, where an empty map or list does not exist: an object
written with ``data: {}``, ``labels: {}`` or ``env: []`` (server-side apply leaves such
values behind) reads back without them. Code that compares desired with actual state
sees what it would see on a real cluster. Structs stay even when empty (a pod's
``securityContext: {}``), required fields stay (``containers``), and custom resources
keep everything, as their schemas decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from milkyway.sim.apiserver.schemas import BuiltinSchemas

_REF = "#/$defs/"
_MAP, _LIST, _STRUCT = "map", "list", "struct"


@dataclass(frozen=True, slots=True)
class _Field:
    shape: str
    """``map``, ``list``, ``struct`` (a nested type definition) or ``""`` (a scalar)."""
    child: str | None
    """The definition of the struct, or of the struct a map's values or list's items are."""
    required: bool


_SHAPES: dict[tuple[int, str], dict[str, _Field]] = {}


def _ref(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        return ref[len(_REF) :]
    for option in node.get("allOf") or ():
        if isinstance(option, dict) and (found := _ref(option)):
            return found
    return None


def _fields(name: str, schemas: BuiltinSchemas) -> dict[str, _Field]:
    key = (id(schemas), name)
    known = _SHAPES.get(key)
    if known is not None:
        return known
    definition = schemas.definitions.get(name) or {}
    required = set(definition.get("required") or ())
    fields: dict[str, _Field] = {}
    for prop, node in (definition.get("properties") or {}).items():
        if not isinstance(node, dict):
            continue
        types = node.get("type") or ()
        types = (types,) if isinstance(types, str) else tuple(types)
        ref = _ref(node)
        if ref is not None:
            fields[prop] = _Field(_STRUCT, ref, prop in required)
        elif "array" in types:
            items = node.get("items")
            child = _ref(items) if isinstance(items, dict) else None
            fields[prop] = _Field(_LIST, child, prop in required)
        elif "object" in types and isinstance(node.get("additionalProperties"), dict):
            child = _ref(node["additionalProperties"])
            fields[prop] = _Field(_MAP, child, prop in required)
        else:
            fields[prop] = _Field("", None, prop in required)
    _SHAPES[key] = fields
    return fields


def drop_empty(obj: Any, definition: str, schemas: BuiltinSchemas) -> None:
    """Remove (in place) the empty optional maps and lists of ``obj``, at every depth."""
    if not isinstance(obj, dict) or not obj:
        return
    fields = _fields(definition, schemas)
    if len(obj) <= len(fields):
        pairs = [(prop, fields.get(prop)) for prop in obj]
    else:
        pairs = [(prop, field) for prop, field in fields.items() if prop in obj]
    for prop, field in pairs:
        if field is None or not field.shape:
            continue
        value = obj[prop]
        if field.shape == _STRUCT:
            if field.child is not None and type(value) is dict:
                drop_empty(value, field.child, schemas)
        elif field.shape == _MAP and isinstance(value, dict):
            if not value and not field.required:
                del obj[prop]
            elif field.child is not None:
                for child in value.values():
                    drop_empty(child, field.child, schemas)
        elif field.shape == _LIST and isinstance(value, list):
            if not value and not field.required:
                del obj[prop]
            elif field.child is not None:
                for child in value:
                    drop_empty(child, field.child, schemas)
