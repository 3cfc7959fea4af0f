"""The three PATCH bodies a Kubernetes API server accepts besides apply.

* JSON merge patch (RFC 7386, ``application/merge-patch+json``): objects merge, ``null``
  deletes, everything else (lists included) replaces.
* JSON patch (RFC 6902, ``application/json-patch+json``): a list of operations applied
  atomically; a failure (a ``test`` that does not hold, a missing path) rejects the whole
  request with ``422 Invalid`` and the generic message a real API server gives.
* Strategic merge patch (``application/strategic-merge-patch+json``): a merge patch that
  reads the built-in type's schema, so lists tagged ``x-kubernetes-patch-strategy: merge``
  merge item by item on their ``x-kubernetes-patch-merge-key`` instead of being replaced,
  and that understands the ``$patch``, ``$retainKeys``, ``$setElementOrder/<list>`` and
  ``$deleteFromPrimitiveList/<list>`` directives ``kubectl`` sends. Custom resources have no
  such schema, so a real server refuses the media type for them; so does this one.

Every function returns a new document and leaves its inputs untouched.
"""

from __future__ import annotations

import json
from typing import Any

from milkyway.sim.apiserver.errors import ApiError, Cause, bad_request
from milkyway.sim.apiserver.schemas import BuiltinSchemas

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "json_copy",
    "json_equal",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

MAX_JSON_PATCH_OPERATIONS = 10_000
"""The API server's cap on operations in one JSON patch (``413`` above it)."""

_CUSTOM_RESOURCE_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


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


# --------------------------------------------------------------------------- merge patch


def merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch to ``original``."""
    if not isinstance(patch, dict):
        raise bad_request(
            f"Invalid JSON Patch: a merge patch must be a JSON object, got {_json_kind(patch)}"
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
            f"json: cannot unmarshal {_json_kind(operations)} into Go value of type "
            "jsonpatch.Patch (a JSON patch is a list of operations)"
        )
    for index, op in enumerate(operations):
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type "
                f"jsonpatch.Operation (operation {index} must be an object)"
            )
        for name in ("op", "path", "from"):
            if name in op and not isinstance(op[name], str):
                raise bad_request(
                    f"json: cannot unmarshal {_json_kind(op[name])} into Go value of type "
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
    for op in operations:
        try:
            document = _apply_operation(document, op)
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
                    f"the patched document must stay a JSON object, got {_json_kind(document)}",
                )
            ],
        )
    return document


def _apply_operation(document: Any, op: dict[str, Any]) -> Any:
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
    value = json_copy(_get(document, from_tokens, source, kind))
    return _add(document, tokens, value, path, kind)


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


# ----------------------------------------------------------------- strategic merge patch

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList"

_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"


def strategic_merge_patch(
    original: dict[str, Any],
    patch: dict[str, Any],
    schema: dict[str, Any] | None,
    schemas: BuiltinSchemas,
) -> dict[str, Any]:
    """Apply a strategic merge patch to a built-in object whose type definition is ``schema``.

    ``schema`` is ``None`` for kinds without a built-in definition (custom resources): a real
    API server does not accept this patch type for them and answers ``415``.
    """
    if schema is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(_CUSTOM_RESOURCE_PATCH_TYPES),
        )
    if not isinstance(patch, dict):
        raise bad_request(
            "json: cannot unmarshal "
            f"{_json_kind(patch)} into Go value of type map[string]interface {{}} "
            "(a strategic merge patch must be a JSON object)"
        )
    patcher = _StrategicPatcher(schemas)
    result = patcher.merge_map(json_copy(original), patch, schemas.resolve(schema))
    return result


class _Field:
    """What the schema says about one field: how to patch it and what its value looks like."""

    __slots__ = ("merge_key", "node", "strategies")

    def __init__(self, strategies: frozenset[str], merge_key: str, node: dict[str, Any] | None):
        self.strategies = strategies
        self.merge_key = merge_key
        self.node = node


_UNTYPED = _Field(frozenset(), "", None)


class _StrategicPatcher:
    def __init__(self, schemas: BuiltinSchemas) -> None:
        self.schemas = schemas

    # -- schema lookups

    def _resolve(self, node: dict[str, Any] | None) -> dict[str, Any] | None:
        if node is None:
            return None
        try:
            return self.schemas.resolve(node)
        except (KeyError, ValueError):
            return None

    def field(self, node: dict[str, Any] | None, name: str) -> _Field:
        if node is None:
            return _UNTYPED
        prop = node.get("properties", {}).get(name)
        if prop is None:
            extra = node.get("additionalProperties")
            prop = extra if isinstance(extra, dict) else None
        if prop is None:
            return _UNTYPED
        strategy = prop.get("x-kubernetes-patch-strategy", "")
        strategies = frozenset(s.strip() for s in strategy.split(",") if s.strip())
        return _Field(strategies, prop.get("x-kubernetes-patch-merge-key", ""), prop)

    def items_node(self, field: _Field) -> dict[str, Any] | None:
        resolved = self._resolve(field.node)
        if resolved is None or not isinstance(resolved.get("items"), dict):
            return None
        return self._resolve(resolved["items"])

    # -- maps

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], node: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Merge ``patch`` into ``original`` (owned by the caller, changed in place)."""
        if _DIRECTIVE in patch:
            directive = patch[_DIRECTIVE]
            if directive == "replace":
                rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
                return self.merge_map({}, rest, node)
            if directive == "delete":
                return {}
            raise bad_request(
                f"unknown patch type: {directive} in map: {_short(patch)} "
                '($patch in an object must be "replace" or "delete")'
            )
        pending = dict(patch)
        if _RETAIN_KEYS in pending:
            self._retain_keys(original, pending)
        self._apply_set_element_orders(original, pending, node)
        deletions: list[tuple[str, Any]] = []
        for key, value in pending.items():
            if key.startswith(_DELETE_PRIMITIVES):
                deletions.append((_directive_target(key, _DELETE_PRIMITIVES), value))
                continue
            if value is None:
                original.pop(key, None)
                continue
            field = self.field(node, key)
            current = original.get(key)
            if key not in original or _json_kind(current) != _json_kind(value):
                original[key] = self.fresh(value, field)
            elif isinstance(value, dict):
                if "replace" in field.strategies:
                    original[key] = self.merge_map({}, value, self._resolve(field.node))
                else:
                    original[key] = self.merge_map(current, value, self._resolve(field.node))
            elif isinstance(value, list):
                if "merge" in field.strategies:
                    original[key] = self.merge_list(current, value, field)
                else:
                    original[key] = self.fresh(value, field)
            else:
                original[key] = value
        for target, values in deletions:
            if not isinstance(values, list):
                raise bad_request(_BAD_PRIMITIVE_LIST)
            current = original.get(target)
            if isinstance(current, list):
                original[target] = [v for v in current if not any(json_equal(v, d) for d in values)]
        return original

    def fresh(self, value: Any, field: _Field) -> Any:
        """A patch value for a field absent from the original, with its directives applied."""
        if isinstance(value, dict):
            return self.merge_map({}, value, self._resolve(field.node))
        if isinstance(value, list):
            if "merge" in field.strategies:
                return self.merge_list([], value, field)
            return json_copy(value)
        return value

    def _retain_keys(self, original: dict[str, Any], pending: dict[str, Any]) -> None:
        keep = pending.pop(_RETAIN_KEYS)
        if not isinstance(keep, list):
            raise bad_request(_BAD_RETAIN_KEYS)
        for key, value in pending.items():
            if value is None or key.startswith((_DELETE_PRIMITIVES, _SET_ORDER)):
                continue
            if key not in keep:
                raise bad_request(
                    f"{_BAD_RETAIN_KEYS}: the patch sets {key!r} but $retainKeys lists only {keep}"
                )
        for key in [k for k in original if k not in keep]:
            del original[key]

    def _apply_set_element_orders(
        self, original: dict[str, Any], pending: dict[str, Any], node: dict[str, Any] | None
    ) -> None:
        for key in [k for k in pending if k.startswith(_SET_ORDER)]:
            order = pending.pop(key)
            target = _directive_target(key, _SET_ORDER)
            if not isinstance(order, list):
                raise bad_request(_BAD_SET_ORDER)
            field = self.field(node, target)
            merge_key = field.merge_key
            found_original = isinstance(original.get(target), list)
            found_patch = target in pending
            patch_list = pending.pop(target, None)
            if found_patch and not isinstance(patch_list, list):
                raise bad_request(_BAD_SET_ORDER)
            _check_order_consistent(patch_list or [], order, merge_key)
            if found_original and found_patch:
                if "merge" in field.strategies:
                    merged = self.merge_list(original[target], patch_list, field)
                else:
                    merged = self.fresh(patch_list, field)
            elif found_patch:
                merged = self.fresh(patch_list, field)
            elif found_original:
                merged = original[target]
            else:
                continue
            ordered_keys = [_item_key(v, merge_key) for v in order]
            in_order = [v for v in merged if _item_key(v, merge_key) in ordered_keys]
            server_only = [v for v in merged if _item_key(v, merge_key) not in ordered_keys]
            server_order = [_item_key(v, merge_key) for v in original.get(target) or []]
            original[target] = _interleave(
                _sorted_by(in_order, ordered_keys, merge_key),
                _sorted_by(server_only, server_order, merge_key),
                server_order,
                merge_key,
            )

    # -- lists

    def merge_list(self, original: list[Any], patch: list[Any], field: _Field) -> list[Any]:
        """Merge a list whose strategy is ``merge``: by merge key, or as a set of scalars."""
        if not original and not patch:
            return list(original)
        kinds = {_json_kind(v) for v in [*original, *patch]}
        if "array" in kinds:
            raise ApiError(422, "Invalid", "lists of lists are not supported")
        if len(kinds) > 1:
            raise bad_request(
                f"list element types are not identical: {_short(original)} and {_short(patch)}"
            )
        server_order_items = list(original)
        if kinds != {"object"}:
            merged = list(original)
            for value in patch:
                if not any(json_equal(value, seen) for seen in merged):
                    merged.append(value)
            patch_keys = list(patch)
            merge_key = ""
        else:
            merge_key = field.merge_key
            if not merge_key:
                raise bad_request(
                    "cannot merge lists without merge key (the schema declares no "
                    "x-kubernetes-patch-merge-key for this list)"
                )
            items_node = self.items_node(field)
            kept, plain, replace = self._special_elements(original, patch, merge_key)
            if replace:
                return [self.merge_map({}, v, items_node) for v in plain]
            merged = list(kept)
            server_order_items = list(kept)
            for value in plain:
                key = value[merge_key]
                index = next(
                    (i for i, v in enumerate(merged) if json_equal(v.get(merge_key), key)), None
                )
                if index is None:
                    merged.append(self.merge_map({}, value, items_node))
                else:
                    merged[index] = self.merge_map(merged[index], value, items_node)
            patch_keys = [v[merge_key] for v in plain]
        in_patch = [v for v in merged if _contains(patch_keys, _item_key(v, merge_key))]
        server_only = [v for v in merged if not _contains(patch_keys, _item_key(v, merge_key))]
        server_order = [_item_key(v, merge_key) for v in server_order_items]
        return _interleave(
            _sorted_by(in_patch, patch_keys, merge_key),
            _sorted_by(server_only, server_order, merge_key),
            server_order,
            merge_key,
        )

    @staticmethod
    def _special_elements(
        original: list[dict[str, Any]], patch: list[dict[str, Any]], merge_key: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """Apply ``$patch`` list items: deletions now; report a ``replace``."""
        kept = list(original)
        plain: list[dict[str, Any]] = []
        replace = False
        for item in patch:
            if _DIRECTIVE not in item:
                if merge_key not in item:
                    raise bad_request(
                        f"map: {_short(item)} does not contain declared merge key: {merge_key}"
                    )
                plain.append(item)
                continue
            directive = item[_DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise bad_request(
                        f"map: {_short(item)} does not contain declared merge key: {merge_key}"
                    )
                kept = [v for v in kept if not json_equal(v.get(merge_key), item[merge_key])]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise bad_request("merging lists cannot yet be specified in the patch")
            else:
                raise bad_request(
                    f"unknown patch type: {directive} in map: {_short(item)} "
                    '($patch in a list item must be "delete" or "replace")'
                )
        return kept, plain, replace


def _directive_target(key: str, prefix: str) -> str:
    head, sep, tail = key.partition("/")
    if head != prefix or not sep or not tail:
        raise bad_request(_BAD_PRIMITIVE_LIST if prefix == _DELETE_PRIMITIVES else _BAD_SET_ORDER)
    return tail


def _item_key(item: Any, merge_key: str) -> Any:
    if merge_key:
        return item.get(merge_key) if isinstance(item, dict) else None
    return item


def _contains(keys: list[Any], key: Any) -> bool:
    return any(json_equal(k, key) for k in keys)


def _position(keys: list[Any], key: Any) -> int:
    for index, candidate in enumerate(keys):
        if json_equal(candidate, key):
            return index
    return -1


def _sorted_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """Stable sort of ``items`` by where their key appears in ``order``."""
    indexed = [(_position(order, _item_key(v, merge_key)), i, v) for i, v in enumerate(items)]
    if any(pos < 0 for pos, _, _ in indexed):
        return items
    return [v for _, _, v in sorted(indexed, key=lambda t: (t[0], t[1]))]


def _interleave(
    patched: list[Any], server_only: list[Any], server_order: list[Any], merge_key: str
) -> list[Any]:
    """Weave the live object's untouched items back among the patched ones.

    A server-only item goes before the next patched item only when both were in the live
    list and it came first there; otherwise the patched item goes first. This is the order
    a real API server produces, which keeps ``kubectl``'s view of a list stable.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patched):
        if i >= len(server_only):
            out.append(patched[j])
            j += 1
        elif j >= len(patched):
            out.append(server_only[i])
            i += 1
        else:
            left = _position(server_order, _item_key(server_only[i], merge_key))
            right = _position(server_order, _item_key(patched[j], merge_key))
            if left >= 0 and right >= 0 and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patched[j])
                j += 1
    return out


def _check_order_consistent(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """Items of the patch list must appear in ``$setElementOrder`` in the same order."""
    items = [v for v in patch_list if not (isinstance(v, dict) and _DIRECTIVE in v)]
    at = 0
    for item in items:
        key = _item_key(item, merge_key)
        while at < len(order) and not json_equal(_item_key(order[at], merge_key), key):
            at += 1
        if at >= len(order):
            raise bad_request(
                f"The order in patch list: {_short(patch_list)} doesn't match "
                f"{_SET_ORDER} list: {_short(order)}"
            )
        at += 1


def _json_kind(value: Any) -> str:
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


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
