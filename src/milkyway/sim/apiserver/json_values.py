"""Small helpers for JSON-like values (dicts, lists, str, numbers, bool, None).

Patches and apply copy and compare whole objects on every write; these helpers do it with
JSON's rules rather than Python's (``true`` is not ``1``).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "as_array",
    "as_object",
    "json_copy",
    "json_equal",
    "json_kind",
    "schema_type",
    "short_json",
]


def as_object(value: Any) -> dict:
    """``value`` if it is an object, else ``{}``: readers of untrusted objects never raise."""
    return value if isinstance(value, dict) else {}


def as_array(value: Any) -> list:
    """``value`` if it is an array, else ``[]``."""
    return value if isinstance(value, list) else []


def json_copy(value: Any) -> Any:
    """Deep copy of a JSON-like value (faster than :func:`copy.deepcopy` for this shape)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def schema_type(value: Any) -> str:
    """The OpenAPI type name of a decoded JSON value, as validation messages quote it.

    A float with an integral value is an ``integer``, as JSON does not tell ``3`` from ``3.0``.
    """
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
