"""The three PATCH bodies a Kubernetes API server accepts besides apply.

* JSON merge patch (RFC 7386, ``application/merge-patch+json``): objects merge, ``null``
  deletes, everything else (lists included) replaces.
* JSON patch (RFC 6902, ``application/json-patch+json``): a list of operations applied
  atomically; a failure (a ``test`` that does not hold, a missing path) rejects the whole
  request with ``422 Invalid`` and the generic message a real API server gives.
* Strategic merge patch (``application/strategic-merge-patch+json``): implemented in
  :mod:`milkyway.sim.apiserver.strategic_patch` and re-exported here, so the API server
  finds all three in one place.

Every function returns a new document and leaves its inputs untouched.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from milkyway.sim.apiserver.errors import ApiError, Cause, bad_request
from milkyway.sim.apiserver.json_values import json_copy, json_equal, json_kind
from milkyway.sim.apiserver.strategic_patch import strategic_merge_patch

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "json_copy",
    "json_equal",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

MAX_JSON_PATCH_OPERATIONS = 10_000
MAX_COPY_BYTES = 3 * 1024 * 1024
"""Bytes all ``copy`` operations of one JSON patch may add (the request size limit)."""
"""The API server's cap on operations in one JSON patch (``413`` above it)."""

# --------------------------------------------------------------------------- merge patch


def merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch to ``original``."""
    if not isinstance(patch, dict):
        raise bad_request(
            f"Invalid JSON Patch: a merge patch must be a JSON object, got {json_kind(patch)}"
        )
    result = _merge_value(original, patch)
    assert isinstance(result, dict)
    return result


def _merge_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return json_copy(patch)
    if not isinstance(target, dict):
        target = {}
    result: dict[str, Any] = {}
    for key, value in target.items():
        if key not in patch:
            result[key] = json_copy(value)
        elif patch[key] is not None:
            result[key] = _merge_value(value, patch[key])
    for key, value in patch.items():
        if key not in target and value is not None:
            result[key] = _merge_value(None, value)
    return result


# ---------------------------------------------------------------------------- JSON patch


class _PatchFailure(Exception):
    """One operation does not apply; the request is answered with ``422``."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def json_patch(original: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch atomically: all operations or none."""
    if not isinstance(operations, list):
        raise bad_request(
            f"json: cannot unmarshal {json_kind(operations)} into Go value of type "
            "jsonpatch.Patch (a JSON patch is a list of operations)"
        )
    for index, op in enumerate(operations):
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {json_kind(op)} into Go value of type "
                f"jsonpatch.Operation (operation {index} must be an object)"
            )
        for name in ("op", "path", "from"):
            if name in op and not isinstance(op[name], str):
                raise bad_request(
                    f"json: cannot unmarshal {json_kind(op[name])} into Go value of type "
                    f'string (operation {index}: "{name}" must be a string)'
                )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(
            413,
            "RequestEntityTooLarge",
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}",
        )
    document: Any = json_copy(original)
    copied = [0]
    for op in operations:
        try:
            document = _apply_operation(document, op, copied)
        except RecursionError:
            failure = _PatchFailure(
                "the patched document nests too deeply; the operations copy or move a value "
                "into itself",
                str(op.get("path")),
            )
            raise ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                causes=[Cause("FieldValueInvalid", str(failure), failure.path)],
            ) from None
        except _PatchFailure as failure:
            # A real API server answers every failed operation with this generic text; the
            # cause carries the specific reason so a reader can tell what to fix.
            raise ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                causes=[Cause("FieldValueInvalid", str(failure), failure.path)],
            ) from None
    if not isinstance(document, dict):
        raise ApiError(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            causes=[
                Cause(
                    "FieldValueInvalid",
                    f"the patched document must stay a JSON object, got {json_kind(document)}",
                )
            ],
        )
    return document


def _apply_operation(document: Any, op: dict[str, Any], copied: list[int]) -> Any:
    """Apply one operation; ``copied`` accumulates the bytes ``copy`` operations added, which
    are bounded as on a real server (each copy can double the document)."""
    kind = op.get("op")
    path = op.get("path")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise _PatchFailure(
            f"Unexpected kind: {kind if kind is not None else 'unknown'} "
            "(op must be one of add, remove, replace, move, copy, test)",
            path if isinstance(path, str) else "",
        )
    if not isinstance(path, str):
        raise _PatchFailure(f'{kind} operation does not apply: "path" is missing', "")
    tokens = _pointer_tokens(path, kind)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _PatchFailure(f'{kind} operation does not apply: "value" is missing', path)
    if kind == "add":
        return _add(document, tokens, json_copy(op["value"]), path, kind)
    if kind == "remove":
        document, _ = _remove(document, tokens, path, kind)
        return document
    if kind == "replace":
        document, _ = _remove(document, tokens, path, kind)
        return _add(document, tokens, json_copy(op["value"]), path, kind)
    if kind == "test":
        if op["value"] is None and tokens and _absent(document, tokens, path, kind):
            # A real API server lets ``null`` test an absent member of an existing parent.
            return document
        actual = _get(document, tokens, path, kind)
        if not json_equal(actual, op["value"]):
            raise _PatchFailure(
                f"testing value {path} failed: test failed (found {json.dumps(actual)}, "
                f"expected {json.dumps(op['value'])})",
                path,
            )
        return document
    source = op.get("from")
    if not isinstance(source, str):
        raise _PatchFailure(f'{kind} operation does not apply: "from" is missing', path)
    from_tokens = _pointer_tokens(source, kind)
    if kind == "move":
        if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
            raise _PatchFailure(
                f"move operation does not apply: cannot move {source} into its own child {path}",
                path,
            )
        document, value = _remove(document, from_tokens, source, kind)
        return _add(document, tokens, value, path, kind)
    original = _get(document, from_tokens, source, kind)
    try:
        copied[0] += len(orjson.dumps(original))
    except orjson.JSONEncodeError:
        copied[0] = MAX_COPY_BYTES + 1
    if copied[0] > MAX_COPY_BYTES:
        raise _PatchFailure(
            "Unable to complete the copy, the accumulated size increase of copy is "
            f"{copied[0]}, exceeding the limit {MAX_COPY_BYTES}",
            path,
        )
    return _add(document, tokens, json_copy(original), path, kind)


def _pointer_tokens(pointer: str, kind: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _PatchFailure(
            f'{kind} operation does not apply: doc is missing path: "{pointer}" '
            "(a JSON pointer starts with /)",
            pointer,
        )
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _array_index(token: str, length: int, *, allow_end: bool, path: str, kind: str) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise _PatchFailure(
            f"{kind} operation does not apply: invalid array index {token!r} in {path}", path
        )
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise _PatchFailure(
            f"{kind} operation does not apply: index {index} is out of range "
            f"(array length {length}) in {path}",
            path,
        )
    return index


def _parent(document: Any, tokens: list[str], path: str, kind: str) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), allow_end=False, path=path, kind=kind)]
        else:
            raise _PatchFailure(
                f'{kind} operation does not apply: doc is missing path: "{path}": missing value',
                path,
            )
    return node


def _get(document: Any, tokens: list[str], path: str, kind: str) -> Any:
    if not tokens:
        return document
    parent = _parent(document, tokens, path, kind)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), allow_end=False, path=path, kind=kind)]
    raise _PatchFailure(
        f'{kind} operation does not apply: doc is missing path: "{path}": missing value', path
    )


def _absent(document: Any, tokens: list[str], path: str, kind: str) -> bool:
    parent = _parent(document, tokens, path, kind)
    return isinstance(parent, dict) and tokens[-1] not in parent


def _add(document: Any, tokens: list[str], value: Any, path: str, kind: str) -> Any:
    if not tokens:
        return value
    parent = _parent(document, tokens, path, kind)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True, path=path, kind=kind), value)
    else:
        raise _PatchFailure(
            f'{kind} operation does not apply: doc is missing path: "{path}": missing value', path
        )
    return document


def _remove(document: Any, tokens: list[str], path: str, kind: str) -> tuple[Any, Any]:
    if not tokens:
        return None, document
    parent = _parent(document, tokens, path, kind)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return document, parent.pop(last)
    if isinstance(parent, list):
        index = _array_index(last, len(parent), allow_end=False, path=path, kind=kind)
        return document, parent.pop(index)
    raise _PatchFailure(
        f'{kind} operation does not apply: doc is missing path: "{path}": missing value', path
    )
