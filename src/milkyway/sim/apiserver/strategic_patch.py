"""Strategic merge patch (``application/strategic-merge-patch+json``) for built-in types.

A merge patch that reads the type's schema: lists tagged ``x-kubernetes-patch-strategy:
merge`` merge item by item on their ``x-kubernetes-patch-merge-key`` (or as sets, for
scalars) instead of being replaced, and the directives ``kubectl`` sends are understood:
``$patch`` (replace/delete), ``$retainKeys``, ``$setElementOrder/<list>`` and
``$deleteFromPrimitiveList/<list>``. Custom resources have no such schema, so a real
server refuses the media type for them with ``415``; so does this one.
"""

from __future__ import annotations

from typing import Any

from milkyway.sim.apiserver.errors import ApiError, bad_request
from milkyway.sim.apiserver.json_values import json_copy, json_equal, json_kind, short_json
from milkyway.sim.apiserver.schemas import BuiltinSchemas

__all__ = ["strategic_merge_patch"]

_CUSTOM_RESOURCE_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)

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
            f"{json_kind(patch)} into Go value of type map[string]interface {{}} "
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
                f"unknown patch type: {directive} in map: {short_json(patch)} "
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
            if key not in original or json_kind(current) != json_kind(value):
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
        kinds = {json_kind(v) for v in [*original, *patch]}
        if "array" in kinds:
            raise ApiError(422, "Invalid", "lists of lists are not supported")
        if len(kinds) > 1:
            raise bad_request(
                "list element types are not identical: "
                f"{short_json(original)} and {short_json(patch)}"
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
                        f"map: {short_json(item)} does not contain declared merge key: {merge_key}"
                    )
                plain.append(item)
                continue
            directive = item[_DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise bad_request(
                        f"map: {short_json(item)} does not contain declared merge key: {merge_key}"
                    )
                kept = [v for v in kept if not json_equal(v.get(merge_key), item[merge_key])]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise bad_request("merging lists cannot yet be specified in the patch")
            else:
                raise bad_request(
                    f"unknown patch type: {directive} in map: {short_json(item)} "
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
                f"The order in patch list: {short_json(patch_list)} doesn't match "
                f"{_SET_ORDER} list: {short_json(order)}"
            )
        at += 1
