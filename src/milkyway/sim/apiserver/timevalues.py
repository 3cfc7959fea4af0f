"""Time fields of built-in objects (``metav1.Time`` and ``metav1.MicroTime``) as the real
API server decodes them.

A real server parses a ``Time`` with Go's ``time.Parse(time.RFC3339, …)`` and a
``MicroTime`` with the layout ``2006-01-02T15:04:05.000000Z07:00``; a value that does not
parse cannot be decoded at all, so the request fails with ``400 BadRequest`` and Go's
message (``parsing time "…" as "…": cannot parse "…" as "…"``). :func:`time_error`
reproduces that parser for these two layouts, error messages included, and
:func:`check_times` walks an object along its type definition to the first bad value
(and writes the good ones in the canonical form the real server stores).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from milkyway.sim.apiserver.schemas import BuiltinSchemas

TIME_LAYOUT = "2006-01-02T15:04:05Z07:00"
MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICRO = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_REF = "#/$defs/"
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _Bad(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def time_error(value: str, *, micro: bool) -> str | None:
    """Go's error for parsing ``value`` as a Time (or MicroTime); None when it parses."""
    layout = MICRO_LAYOUT if micro else TIME_LAYOUT
    try:
        _parse(value, layout, micro)
    except _Bad as bad:
        return bad.message
    return None


def _parse(value: str, layout: str, micro: bool) -> None:
    rest = value

    def cannot(elem: str) -> _Bad:
        return _Bad(
            f"parsing time {_quote(value)} as {_quote(layout)}: cannot parse "
            f"{_quote(rest)} as {_quote(elem)}"
        )

    def out_of_range(what: str) -> _Bad:
        return _Bad(f"parsing time {_quote(value)}: {what} out of range")

    def number(width: int, elem: str) -> int:
        nonlocal rest
        digits = rest[:width]
        if len(digits) < width or not digits.isdigit() or not digits.isascii():
            raise cannot(elem)
        rest = rest[width:]
        return int(digits)

    def literal(text: str) -> None:
        nonlocal rest
        if not rest.startswith(text):
            raise cannot(text)
        rest = rest[len(text) :]

    year = number(4, "2006")
    literal("-")
    month = number(2, "01")
    if not 1 <= month <= 12:
        raise out_of_range("month")
    literal("-")
    day = number(2, "02")
    if day > 31:
        raise out_of_range("day")
    literal("T")
    if number(2, "15") >= 24:
        raise out_of_range("hour")
    literal(":")
    if number(2, "04") >= 60:
        raise out_of_range("minute")
    literal(":")
    if number(2, "05") >= 60:
        raise out_of_range("second")
    if micro:
        if len(rest) < 7 or rest[0] not in ".," or not rest[1:7].isdigit():
            raise cannot(".000000")
        rest = rest[7:]
    elif len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        rest = rest[end:]
    if rest.startswith("Z"):
        rest = rest[1:]
    else:
        if len(rest) < 6 or rest[0] not in "+-" or rest[3] != ":":
            raise cannot("Z07:00")
        if not (rest[1:3].isdigit() and rest[4:6].isdigit()):
            raise cannot("Z07:00")
        rest = rest[6:]
    if rest:
        raise _Bad(f"parsing time {_quote(value)}: extra text: {_quote(rest)}")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day < 1 or day > (_DAYS[month - 1] if month != 2 or leap else 28):
        raise _Bad(f"parsing time {_quote(value)}: day out of range")


def check_times(obj: Any, definition: str, schemas: BuiltinSchemas) -> str | None:
    """Go's message for the first unparseable time in ``obj`` (with where it is and the
    form the field takes), or None after rewriting every time in the canonical form the
    real server stores: UTC, whole seconds for a Time, microseconds for a MicroTime."""
    found = _check_struct(obj, definition, schemas)
    if found is None:
        return None
    message, micro, path = found
    example = "2006-01-02T15:04:05.000000Z" if micro else "2006-01-02T15:04:05Z"
    return (
        f"{message} (field {_render(path)}: an RFC 3339 time with a zone"
        f"{' and six fractional digits' if micro else ''}, e.g. {example})"
    )


_Failure = tuple[str, bool, list[str | int]]
_CANONICAL = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
)
_TIME_LEN = len("2006-01-02T15:04:05Z")
_MICRO_LEN = len("2006-01-02T15:04:05.000000Z")


def _check_value(parent: Any, key: str | int, micro: bool) -> _Failure | None:
    value = parent[key]
    if not isinstance(value, str):
        return None
    canonical_len = _MICRO_LEN if micro else _TIME_LEN
    if (
        len(value) == canonical_len
        and value[-1] == "Z"
        and _CANONICAL.match(value)
        and (not micro or (value[19] == "." and value[20:26].isdigit()))
    ):
        return None
    message = time_error(value, micro=micro)
    if message is not None:
        return message, micro, [key]
    moment = datetime.fromisoformat(value.replace("z", "Z")).astimezone(UTC)
    parent[key] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")
    return None


def _check_struct(obj: Any, name: str, schemas: BuiltinSchemas) -> _Failure | None:
    if not isinstance(obj, dict):
        return None
    for prop, shape, child in _plan(name, schemas):
        value = obj.get(prop)
        if value is None:
            continue
        found: _Failure | None = None
        if shape == "leaf":
            found = _check_value(obj, prop, child == _MICRO)
        elif shape == "struct":
            found = _check_struct(value, child, schemas)
        elif shape in ("list", "list-leaf") and isinstance(value, list):
            for index in range(len(value)):
                found = (
                    _check_value(value, index, child == _MICRO)
                    if shape == "list-leaf"
                    else _check_struct(value[index], child, schemas)
                )
                if found is not None:
                    found[2].insert(0, index)
                    break
        elif shape in ("map", "map-leaf") and isinstance(value, dict):
            for key in list(value):
                found = (
                    _check_value(value, key, child == _MICRO)
                    if shape == "map-leaf"
                    else _check_struct(value[key], child, schemas)
                )
                if found is not None:
                    found[2].insert(0, key)
                    break
        if found is not None:
            found[2].insert(0, prop)
            return found
    return None


def _render(path: list[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


_PLANS: dict[tuple[int, str], list[tuple[str, str, str]]] = {}
_HOLDS_TIME: dict[tuple[int, str], bool] = {}


def _plan(name: str, schemas: BuiltinSchemas) -> list[tuple[str, str, str]]:
    """(property, shape, definition) of the properties of ``name`` that may hold a time."""
    key = (id(schemas), name)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    plan = []
    definition = schemas.definitions.get(name) or {}
    for prop, node in (definition.get("properties") or {}).items():
        if not isinstance(node, dict):
            continue
        ref = _ref(node)
        if ref is not None:
            if ref in (_TIME, _MICRO):
                plan.append((prop, "leaf", ref))
            elif _holds_time(ref, schemas):
                plan.append((prop, "struct", ref))
            continue
        for container, shape in (("items", "list"), ("additionalProperties", "map")):
            inner = node.get(container)
            ref = _ref(inner) if isinstance(inner, dict) else None
            if ref in (_TIME, _MICRO):
                plan.append((prop, f"{shape}-leaf", ref))
            elif ref is not None and _holds_time(ref, schemas):
                plan.append((prop, shape, ref))
    _PLANS[key] = plan
    return plan


def _ref(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        return ref[len(_REF) :]
    for option in node.get("allOf") or ():
        if isinstance(option, dict) and (found := _ref(option)):
            return found
    return None


def _holds_time(name: str, schemas: BuiltinSchemas) -> bool:
    key = (id(schemas), name)
    known = _HOLDS_TIME.get(key)
    if known is not None:
        return known
    _HOLDS_TIME[key] = False  # cycles (JSONSchemaProps) hold no time on the way round
    found = name in (_TIME, _MICRO) or any(
        _holds_time(ref, schemas) for ref in _refs(schemas.definitions.get(name) or {})
    )
    _HOLDS_TIME[key] = found
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF) :]
        for key, child in node.items():
            if key != "$ref":
                yield from _refs(child)
    elif isinstance(node, list):
        for child in node:
            yield from _refs(child)
