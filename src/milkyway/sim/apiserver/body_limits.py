"""Bounds on what a request body may decode to: nesting depth, alias expansion, size.

A body is at most 3 MiB on the wire, but YAML aliases let a few hundred bytes name a
structure of gigabytes ("billion laughs"), and JSON Patch ``copy`` operations double an
object per operation. A real API server refuses both: its YAML decoder counts nodes
reached through aliases and fails with ``document contains excessive aliasing`` when
they dominate the document, and nothing larger than the request limit is stored. This
module applies the same rules while turning decoded data into plain JSON values (YAML
map keys become strings as the real server's YAML-to-JSON step makes them), so the walk
never costs more than the limits it enforces.

The simulator's nesting limit (:data:`MAX_DEPTH`) is far below the real server's 10,000:
stored objects are serialized with ``orjson``, which stops at 255 levels, and a stored
object is nested further inside lists, watch events and managedFields.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import yaml

from milkyway.sim.apiserver import errors

MAX_DEPTH = 100
"""Deepest nesting of objects and arrays a body may have."""

MAX_DECODED_BYTES = 3 * 1024 * 1024
"""Largest JSON size a body may expand to (the real request limit, 3 MiB)."""

_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000


def _allowed_alias_ratio(decoded: int) -> float:
    """The share of nodes that may come from alias expansion, as the real YAML decoder
    allows: 99 % for small documents, falling to 10 % for very large ones."""
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    share = (decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)
    return 0.99 - 0.89 * share


class _Walk:
    """One bounded conversion: counts nodes, alias-expanded nodes and output bytes."""

    def __init__(self, max_depth: int, max_bytes: int) -> None:
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self.size = 0
        self.decoded = 0
        self.aliased = 0
        self.seen: set[int] = set()

    def charge(self, size: int, in_alias: bool) -> None:
        self.size += size
        self.decoded += 1
        self.aliased += in_alias
        if (
            self.aliased > 100
            and self.decoded > 1000
            and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
        ):
            raise errors.bad_request(
                "the request body is not valid YAML: yaml: document contains excessive "
                "aliasing; write the repeated parts out instead of using anchors and aliases"
            )
        if self.size > self.max_bytes:
            raise errors.request_entity_too_large(
                f"the request body decodes to more than {self.max_bytes} bytes of JSON "
                "(through YAML aliases or a patch that copies values); the limit is the "
                "API server's request size limit"
            )

    def convert(self, value: Any, depth: int, in_alias: bool) -> Any:
        if isinstance(value, dict | list):
            if depth >= self.max_depth:
                raise _too_deep(self.max_depth)
            marker = id(value)
            if marker in self.seen:
                in_alias = True
            else:
                self.seen.add(marker)
            self.charge(2, in_alias)
            if isinstance(value, list):
                return [self.convert(item, depth + 1, in_alias) for item in value]
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = _key(key)
                self.charge(len(name) + 4, in_alias)
                out[name] = self.convert(item, depth + 1, in_alias)
            return out
        return self.scalar(value, in_alias)

    def scalar(self, value: Any, in_alias: bool) -> Any:
        if isinstance(value, str):
            self.charge(len(value) + 2, in_alias)
            return value
        if value is None or isinstance(value, bool):
            self.charge(5, in_alias)
            return value
        if isinstance(value, int):
            self.charge(len(str(value)), in_alias)
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise errors.bad_request(
                    f"the request body holds the number {value}, which JSON cannot represent"
                )
            self.charge(24, in_alias)
            return value
        if isinstance(value, dt.datetime | dt.date):
            text = value.isoformat().replace("+00:00", "Z")
            self.charge(len(text) + 2, in_alias)
            return text
        if isinstance(value, bytes):
            text = value.decode("utf-8", errors="replace")
            self.charge(len(text) + 2, in_alias)
            return text
        if isinstance(value, set | frozenset | tuple):
            return self.convert(list(value), 0, in_alias)
        raise errors.bad_request(
            f"the request body holds a value of type {type(value).__name__}, which has no JSON form"
        )


_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def check_yaml_depth(raw: bytes, loader: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse YAML nested deeper than ``max_depth`` before it is composed.

    libyaml's parser is iterative, but composing nodes recurses in C once per level, so
    a 100 KiB run of ``[`` would overflow the C stack and kill the whole process; the
    event stream shows the depth without building anything."""
    depth = 0
    for event in yaml.parse(raw, Loader=loader):
        if isinstance(event, _OPENS):
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        elif isinstance(event, _CLOSES):
            depth -= 1


def _too_deep(limit: int) -> Exception:
    return errors.bad_request(
        f"the request body is nested more than {limit} levels deep; flatten the object "
        f"(the simulated API server stores at most {limit} levels)"
    )


def _key(key: Any) -> str:
    """A YAML map key as JSON text: strings, numbers and booleans, as the real server's
    YAML-to-JSON conversion writes them; other keys fail the request."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float) and math.isfinite(key):
        return repr(key).removesuffix(".0") if key.is_integer() else repr(key)
    raise errors.bad_request(
        f"the request body is not valid YAML: error converting YAML to JSON: unsupported map "
        f"key of type {type(key).__name__}: {key!r}; map keys must be strings"
    )


def plain_json(
    value: Any, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_DECODED_BYTES
) -> Any:
    """``value`` as plain JSON data, or the 4xx :class:`ApiError` a real server answers
    for a body that nests too deep or expands past the size limit."""
    return _Walk(max_depth, max_bytes).convert(value, 0, False)


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise the 400 :class:`~milkyway.sim.apiserver.errors.ApiError` when decoded JSON
    (which has no aliases and whose size the request limit already bounds) nests deeper
    than ``max_depth``; only containers are visited."""
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth >= max_depth:
            raise _too_deep(max_depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
