"""CEL expressions in flows: ``when:`` conditions and ``${{ … }}`` computed values.

CEL (the language Kubernetes uses for validation rules) is safe by construction: no
I/O, no loops without bounds, no access to Python. Each distinct expression text is
compiled once and the program is cached. Evaluating through ``cel-python`` costs a few
hundred microseconds (its tree-walking interpreter plus converting the activation to
CEL types), so the plain field paths that make up most parameters (``item.name``,
``params.cluster``) are resolved by a direct lookup with the same semantics, and CEL
only runs for real expressions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel

TEMPLATE_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
PATH_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

_ENV = celpy.Environment()
_KEYWORDS = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue"})


class ExpressionError(ValueError):
    """An expression that does not compile or cannot be evaluated; names the text."""


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Any:
    """Compile ``text`` once; raises :class:`ExpressionError` naming the text."""
    source = text.strip()
    if PATH_RE.match(source) and source.split(".")[0] not in _KEYWORDS:
        return tuple(source.split("."))
    try:
        return _ENV.program(_ENV.compile(source))
    except Exception as exc:
        raise ExpressionError(f"cannot compile CEL expression {source!r}: {exc}") from exc


def evaluate(text: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate a CEL expression against ``variables``; the result is plain JSON data."""
    program = compile_expression(text)
    if isinstance(program, tuple):
        return _lookup(text, program, variables)
    activation = {k: json_to_cel(v) for k, v in variables.items()}
    try:
        result = program.evaluate(activation)
    except Exception as exc:
        raise ExpressionError(f"cannot evaluate {text.strip()!r}: {_cel_message(exc)}") from exc
    if isinstance(result, Exception):
        raise ExpressionError(f"cannot evaluate {text.strip()!r}: {_cel_message(result)}")
    return to_json(result)


def _lookup(text: str, path: tuple[str, ...], variables: Mapping[str, Any]) -> Any:
    value: Any = variables
    for part in path:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise ExpressionError(f"cannot evaluate {text.strip()!r}: no such member {part!r}")
    return value


def _cel_message(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


def to_json(value: Any) -> Any:
    """Convert CEL values to plain JSON-compatible Python values."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.BytesType):
        return bytes(value).decode()
    if isinstance(value, Mapping):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return value


def is_template(value: Any) -> bool:
    return isinstance(value, str) and "${{" in value


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Resolve ``${{ }}`` in a parameter value, recursively through lists and mappings.

    A string that is exactly one ``${{ expr }}`` takes the expression's typed value; a
    string with text around expressions is interpolated as a string.
    """
    if isinstance(value, str):
        if "${{" not in value:
            return value
        text = value.strip()
        whole = TEMPLATE_RE.match(text)
        if whole is not None and whole.end() == len(text):
            return evaluate(whole.group(1), variables)
        return TEMPLATE_RE.sub(lambda m: _as_text(evaluate(m.group(1), variables)), value)
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    return value


def has_templates(value: Any) -> bool:
    if isinstance(value, str):
        return "${{" in value
    if isinstance(value, dict):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False


def expressions_in(value: Any) -> list[str]:
    """Every ``${{ }}`` expression inside a value, for compile-time checks."""
    if isinstance(value, str):
        return [m.group(1) for m in TEMPLATE_RE.finditer(value)]
    if isinstance(value, dict):
        return [e for v in value.values() for e in expressions_in(v)]
    if isinstance(value, list):
        return [e for v in value for e in expressions_in(v)]
    return []


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def truthy(text: str, variables: Mapping[str, Any]) -> bool:
    """Evaluate a condition; anything but a boolean is an error naming the expression."""
    result = evaluate(text, variables)
    if not isinstance(result, bool):
        raise ExpressionError(
            f"condition {text.strip()!r} must be true or false, got {type(result).__name__}"
        )
    return result
