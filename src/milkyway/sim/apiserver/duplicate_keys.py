"""Duplicate keys in a JSON request body, named by their field path.

JSON parsers keep the last of two equal keys silently; a real API server's strict decoder
reports each one (``duplicate field "spec.replicas"``) so ``fieldValidation`` can refuse
the request or warn about it. Bodies are parsed with ``orjson`` first; the slower
pair-by-pair parse only runs when the body spells more keys than the parsed value holds.

Every key ends in ``":``; a quote inside a string is escaped (``\\"``), and spelled the
same way in the body and in ``orjson``'s re-encoding of the parsed value. So for a body
without ``\\u`` escapes or blanks before a colon, the two counts of ``":`` are equal
exactly when no key repeats. Other bodies have their parsed keys counted one by one
against every ``"`` followed by a colon (more of those than keys: parse pair by pair).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["duplicate_fields"]

_KEY_END = re.compile(rb'"\s*:')
_BLANK_KEY_END = re.compile(rb'"\s+:')


class _Pairs(dict[str, Any]):
    """An object as parsed, remembering which of its keys appeared more than once."""

    duplicates: list[str]


def _keep_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def duplicate_fields(raw: bytes, parsed: Any) -> list[str]:
    """Paths (``spec.template.spec.containers[0].name``) of keys ``raw`` repeats.

    ``parsed`` is ``raw`` already decoded; it is only used to skip the exact check.
    """
    if b"\\u" not in raw and _BLANK_KEY_END.search(raw) is None:
        if raw.count(b'":') <= orjson.dumps(parsed).count(b'":'):
            return []
    elif len(_KEY_END.findall(raw)) <= _count_keys(parsed):
        return []
    found: list[str] = []
    _collect(json.loads(raw, object_pairs_hook=_keep_pairs), "", found)
    return found


def _count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_keys(v) for v in value)
    return 0


def _collect(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Pairs):
        prefix = f"{path}." if path else ""
        found.extend(prefix + key for key in value.duplicates)
        for key, child in value.items():
            _collect(child, prefix + key, found)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _collect(child, f"{path}[{i}]", found)
