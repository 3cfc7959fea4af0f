"""Turn YAML text (or parsed data) into a valid :class:`Application`, or say everything wrong.

Schema errors from pydantic are rewritten into :class:`FieldError` s with the path as the
user wrote it, the value, and a fix; YAML pitfalls (``3.10`` read as a float, ``NO`` read
as a boolean) are explained from the original text of the scalar.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from milkyway.model.application import Application
from milkyway.model.base import API_VERSION, DNS_LABEL_PATTERN
from milkyway.model.component_type import ComponentType
from milkyway.model.errors import FieldError, ValidationFailed, format_path
from milkyway.model.resolve import ResolvedApplication, resolve
from milkyway.model.security_policy import DEFAULT_POLICY, SecurityPolicy
from milkyway.model.source import MAX_DEPTH, SourceMap, parse_yaml
from milkyway.model.validation import check_application, unknown_flows

_DOCS = "see docs/application.md"
_UNION_TAG_PREFIXES = ("function-", "constrained-", "lax-", "strict-", "json-or-python[")


def load_application(text: str) -> Application:
    """Parse and validate an Application manifest (YAML or JSON text).

    Checks everything that needs no ComponentType (schema, names, sizes, YAML pitfalls);
    :func:`milkyway.model.resolve.resolve` checks the rest. Raises :class:`ValidationFailed`
    with every problem found.
    """
    data, source = parse_yaml(text)
    return application_from_data(data, source)


def load_resolved(
    text: str,
    types: Mapping[str, ComponentType],
    flows: AbstractSet[str] | None = None,
    policy: SecurityPolicy = DEFAULT_POLICY,
) -> ResolvedApplication:
    """Parse, validate and resolve an Application manifest in one step (what
    ``milkyway validate`` does); errors carry the YAML line of their field.

    YAML pitfalls do not hide other problems: the checks against the types run on the
    values as the user wrote them (``3.10`` as the text ``3.10``). ``flows``: the names of
    the Flows that exist; a component's flow override must name one of them. ``policy``:
    what the types may ask of their pods."""
    data, source = parse_yaml(text)
    app, errors = _check(data, source)
    if app is not None and flows is not None:
        errors.extend(with_lines(unknown_flows(app, set(flows)), source))
    if app is not None:
        try:
            resolved = resolve(app, types, policy=policy)
        except ValidationFailed as exc:
            errors.extend(with_lines(exc.errors, source))
        else:
            if not errors:
                return resolved
    raise ValidationFailed(errors)


def application_from_data(data: Any, source: SourceMap | None = None) -> Application:
    """Validate already-parsed data (e.g. an object read from the API server, or a REST
    request's JSON, which no YAML reader has bounded)."""
    if _nesting(data) > MAX_DEPTH:
        raise ValidationFailed(
            [
                FieldError(
                    "",
                    None,
                    f"the document nests mappings and lists more than {MAX_DEPTH} levels deep",
                    "an Application needs a few levels; send the manifest itself",
                )
            ]
        )
    app, errors = _check(data, source or SourceMap())
    if app is None or errors:
        raise ValidationFailed(errors)
    return app


def _nesting(data: Any) -> int:
    """How deep ``data`` nests lists and mappings, counted without recursion (stopping
    once past the limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _check(data: Any, source: SourceMap) -> tuple[Application | None, list[FieldError]]:
    """Every problem of ``data``, and the Application it means when only YAML pitfalls and
    type-free checks failed (``None`` when the schema itself is violated)."""
    errors = [
        FieldError(
            format_path(path),
            path[-1],
            "duplicate key: YAML keeps only the last one",
            "remove or rename one of them",
            line,
        )
        for path, line in source.duplicates
    ]
    if not isinstance(data, dict):
        errors.append(
            FieldError(
                "",
                data,
                "an Application must be a mapping",
                f"start from examples/stream1.yaml; {_DOCS}",
                source.line(()),
            )
        )
        return None, errors
    errors.extend(_kind_errors(data, source))
    repaired = copy.deepcopy(data)
    repaired["apiVersion"], repaired["kind"] = API_VERSION, "Application"
    for attempt in range(2):
        try:
            app = Application.model_validate(repaired)
        except PydanticValidationError as exc:
            found = _schema_errors(exc, repaired, source)
            pitfalls = [(loc, error) for loc, error, pitfall in found if pitfall]
            if attempt == 0 and pitfalls:
                errors.extend(error for _, error in pitfalls)
                for loc, _ in pitfalls:
                    _replace(repaired, loc, source.scalars[loc].text)
                continue
            errors.extend(error for _, error, _ in found)
            return None, errors
        errors.extend(with_lines(check_application(app), source))
        return app, errors
    return None, errors


def _replace(data: Any, loc: tuple[str | int, ...], value: str) -> None:
    node = data
    for part in loc[:-1]:
        node = node[part]
    node[loc[-1]] = value


def with_lines(errors: list[FieldError], source: SourceMap) -> list[FieldError]:
    """Fill in the YAML line of each error from the source map."""
    if not source.lines:
        return errors
    by_path = {format_path(path): line for path, line in source.lines.items()}
    out = []
    for error in errors:
        probe = error.path
        line = None
        while probe:
            if probe in by_path:
                line = by_path[probe]
                break
            cut = max(probe.rfind("."), probe.rfind("["))
            if cut <= 0:
                break
            probe = probe[:cut]
        out.append(
            error
            if error.line or line is None
            else FieldError(error.path, error.value, error.message, error.fix, line)
        )
    return out


def _kind_errors(data: dict[str, Any], source: SourceMap) -> list[FieldError]:
    errors = []
    if data.get("apiVersion") != API_VERSION:
        errors.append(
            FieldError(
                "apiVersion",
                data.get("apiVersion"),
                "not a Milkyway Application API version",
                f"use apiVersion: {API_VERSION}",
                source.line(("apiVersion",)),
            )
        )
    if data.get("kind") != "Application":
        errors.append(
            FieldError(
                "kind",
                data.get("kind"),
                "not an Application",
                "use kind: Application",
                source.line(("kind",)),
            )
        )
    return errors


def _schema_errors(
    exc: PydanticValidationError, data: dict[str, Any], source: SourceMap
) -> list[tuple[tuple[str | int, ...], FieldError, bool]]:
    """(location, error, is a YAML pitfall) for every schema error."""
    found: list[tuple[tuple[str | int, ...], FieldError, bool]] = []
    seen: set[tuple[str, str]] = set()
    for item in exc.errors(include_url=False):
        loc = _strip_union_tags(tuple(item["loc"]))
        path = format_path(loc)
        scalar = source.scalars.get(loc)
        value = _value_at(data, loc)
        raw = scalar.text if scalar else None
        message, fix = _explain(item, loc, value, raw)
        if item["type"] == "missing":
            value = None
        if (path, message) in seen:
            continue
        seen.add((path, message))
        pitfall = item["type"] == "string_type" and raw is not None and not isinstance(value, str)
        found.append((loc, FieldError(path, value, message, fix, source.line(loc)), pitfall))
    return found


def _strip_union_tags(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop the branch names pydantic inserts for unions and constrained types."""
    kept: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and part.startswith(_UNION_TAG_PREFIXES):
            continue
        kept.append(part)
    return tuple(kept)


def _value_at(data: Any, loc: tuple[str | int, ...]) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _explain(item: Any, loc: tuple[str | int, ...], value: Any, raw: str | None) -> tuple[str, str]:
    kind = item["type"]
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return "required field is missing", f"add `{field}`; {_DOCS}"
    if kind == "extra_forbidden":
        known = known_fields(loc[:-1])
        close = difflib.get_close_matches(str(field), known, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return (
            f"unknown field `{field}`",
            f"{hint}remove it; fields allowed here: {', '.join(known)}",
        )
    if kind in ("string_type", "str_type") and raw is not None and not isinstance(value, str):
        what = _yaml_reading(value)
        return (
            f"YAML reads the unquoted `{raw}` as {what}, not the text `{raw}`",
            f'quote it: {field}: "{raw}"',
        )
    if kind == "string_type":
        return f"must be a string, not {type(value).__name__}", f"write `{field}` as text"
    if kind == "string_pattern_mismatch":
        pattern = item.get("ctx", {}).get("pattern", "")
        if pattern == DNS_LABEL_PATTERN:
            return (
                "not a valid name (RFC 1123 label)",
                "use lower-case letters, digits and '-', starting and ending with a letter "
                "or digit, at most 63 characters",
            )
        return f"does not match the pattern {pattern}", f"change the value to match {pattern}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return item["msg"].replace("Input", "value"), "use a value within the allowed range"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number", f"write `{field}` as an integer, e.g. 3"
    if kind == "too_short":
        return item["msg"].replace("List", "list"), f"add at least one entry to `{field}`"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        return f"not one of the allowed values ({expected})", f"use one of {expected}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping", f"write `{field}` as `key: value` entries; {_DOCS}"
    if kind == "list_type":
        return "must be a list", f"write `{field}` as a list of `- ` items; {_DOCS}"
    if kind == "value_error":
        return str(item.get("ctx", {}).get("error", item["msg"])), _DOCS
    return item["msg"], _DOCS


def _yaml_reading(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def known_fields(loc: tuple[str | int, ...]) -> list[str]:
    """Field names (as written in YAML) allowed at ``loc`` of an Application."""
    schema = _application_schema()
    node: dict[str, Any] = schema
    for part in loc:
        node = _deref(node, schema)
        if isinstance(part, int):
            node = node.get("items", {})
        elif "properties" in node and part in node["properties"]:
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return []
    node = _deref(node, schema)
    return list(node.get("properties", {}))


def _deref(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:
            node = next((b for b in node["anyOf"] if b.get("type") != "null"), {})
        else:
            return node


@cache
def _application_schema() -> dict[str, Any]:
    model: type[BaseModel] = Application
    return model.model_json_schema(by_alias=True)
