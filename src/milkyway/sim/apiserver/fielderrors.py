"""Field errors worded as the Kubernetes API server words them.

Clients and people read ``status.details.causes``: ``reason`` says what kind of problem it
is (``FieldValueRequired``, ``FieldValueInvalid``…), ``field`` says where
(``spec.containers[0].image``) and ``message`` repeats the offending value and what was
expected, in the same shape as the real server's ``field.Error`` bodies, so tools and
people that parse them keep working.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from milkyway.sim.apiserver.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
TYPE_INVALID = "FieldValueTypeInvalid"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"

Path = tuple[str | int, ...]


def render_path(path: Iterable[str | int], map_keys: frozenset[int] = frozenset()) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``.

    Positions listed in ``map_keys`` are keys of a map and render as ``[key]``, as the
    real server renders ``metadata.labels[app]``.
    """
    out = ""
    for position, part in enumerate(path):
        if isinstance(part, int) or position in map_keys:
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def show_value(value: Any) -> str:
    """The value as the server quotes it: strings quoted, scalars bare, composites by type."""
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(str(value))


def required(field: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, f"Required value: {detail}" if detail else "Required value", field)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(INVALID, f"Invalid value: {show_value(value)}: {detail}", field)


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(TYPE_INVALID, f"Invalid value: {show_value(value)}: {detail}", field)


def not_supported(field: str, value: Any, supported: Iterable[Any]) -> Cause:
    listed = ", ".join(show_value(v) for v in supported)
    return Cause(
        NOT_SUPPORTED, f"Unsupported value: {show_value(value)}: supported values: {listed}", field
    )


def duplicate(field: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {show_value(value)}", field)


def not_found(field: str, value: Any) -> Cause:
    return Cause(NOT_FOUND, f"Not found: {show_value(value)}", field)


def forbidden(field: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, f"Forbidden: {detail}", field)


def too_long(field: str, limit: int, *, unit: str = "bytes") -> Cause:
    return Cause(TOO_LONG, f"Too long: may not be more than {limit} {unit}", field)


def too_many(field: str, actual: int, limit: int) -> Cause:
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {limit} items", field)


def unknown_field(field: str) -> Cause:
    """An unknown field under strict field validation (``strict decoding error``)."""
    return Cause(INVALID, f'unknown field "{field}"', field)


def is_unknown_field(cause: Cause) -> bool:
    return cause.reason == INVALID and cause.message.startswith("unknown field ")
