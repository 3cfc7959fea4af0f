"""Field ownership as a real API server records it in ``metadata.managedFields``.

A field path is a tuple of elements, each one of

* ``("f", name)`` a field of an object or a key of a map (``f:name`` in FieldsV1),
* ``("k", json)`` an item of a list with ``x-kubernetes-list-type: map``, named by its key
  fields (``k:{"name":"nginx"}``),
* ``("v", json)`` an item of a list with ``x-kubernetes-list-type: set`` (``v:"foo"``),

and a field set is a Python ``set`` of such paths. The schema decides the shape: lists are
atomic unless their list type says otherwise, objects are granular unless
``x-kubernetes-map-type: atomic``. Without a schema (custom resources served without one),
lists are atomic and objects granular, as the real server treats untyped fields.

This module only computes; :mod:`milkyway.sim.apiserver.apply` decides ownership.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from milkyway.sim.apiserver import fields_delta
from milkyway.sim.apiserver.errors import ApiError, Cause
from milkyway.sim.apiserver.json_values import json_copy, json_equal
from milkyway.sim.apiserver.schemas import BuiltinSchemas

PathElement = tuple[str, Any]
FieldPath = tuple[PathElement, ...]
FieldSet = set[FieldPath]

# Key fields a real server fills with their default when an item omits them, so that
# ``ports: [{containerPort: 80}]`` and the defaulted live ``protocol: TCP`` are one item.
_KEY_FIELD_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

# Fields the API server sets itself; nobody owns them.
_SERVER_METADATA = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
)

# The root and ``metadata`` itself are containers nobody owns.
_UNOWNED: frozenset[FieldPath] = frozenset({(), (("f", "metadata"),)})

# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Slot:
    """The schema of one position in an object: the property node and its resolution."""

    prop: dict[str, Any]
    node: dict[str, Any]


class SchemaTypes:
    """Reads list types, map types and keys off JSON-schema nodes (built-in or CRD).

    Lookups are memoised per schema node; every write walks the whole object, so this is
    on the path of each create, update and patch.
    """

    _CACHE_LIMIT = 100_000

    def __init__(self, schemas: BuiltinSchemas | None) -> None:
        self.schemas = schemas
        # Keyed by id() of a schema node; the node is kept in the value so the id stays valid.
        self._fields: dict[tuple[int, str], tuple[dict[str, Any], Slot | None]] = {}

    @classmethod
    def for_schemas(cls, schemas: BuiltinSchemas | None) -> SchemaTypes:
        """The shared instance for ``schemas`` (one per loaded Kubernetes version)."""
        key = id(schemas)
        cached = _SHARED_TYPES.get(key)
        if cached is None or cached.schemas is not schemas:
            cached = _SHARED_TYPES[key] = cls(schemas)
        return cached

    def slot(self, prop: dict[str, Any] | None) -> Slot | None:
        if not isinstance(prop, dict):
            return None
        node = prop
        if "$ref" in prop:
            if self.schemas is None:
                return None
            try:
                node = self.schemas.resolve(prop)
            except (KeyError, ValueError):
                return None
        if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
            return None
        return Slot(prop, node)

    def field(self, slot: Slot | None, name: str) -> Slot | None:
        if slot is None:
            return None
        key = (id(slot.node), name)
        hit = self._fields.get(key)
        if hit is not None and hit[0] is slot.node:
            return hit[1]
        prop = slot.node.get("properties", {}).get(name)
        if prop is None:
            extra = slot.node.get("additionalProperties")
            prop = extra if isinstance(extra, dict) else None
        found = self.slot(prop)
        if len(self._fields) >= self._CACHE_LIMIT:
            self._fields.clear()
        self._fields[key] = (slot.node, found)
        return found

    @staticmethod
    def is_map_entry(slot: Slot | None, name: str) -> bool:
        """True for keys of a ``map[string]…`` (labels, data), whose entries are owned whole."""
        if slot is None:
            return False
        return name not in slot.node.get("properties", {}) and isinstance(
            slot.node.get("additionalProperties"), dict
        )

    @staticmethod
    def is_granular_map(slot: Slot | None) -> bool:
        """True for ``map[string]…`` fields (not structs), which own themselves when added."""
        if slot is None:
            return False
        return not slot.node.get("properties") and isinstance(
            slot.node.get("additionalProperties"), dict
        )

    def items(self, slot: Slot | None) -> Slot | None:
        if slot is None:
            return None
        return self.slot(slot.node.get("items") or slot.prop.get("items"))

    @staticmethod
    def map_atomic(slot: Slot | None) -> bool:
        if slot is None:
            return False
        return "atomic" in (
            slot.prop.get("x-kubernetes-map-type"),
            slot.node.get("x-kubernetes-map-type"),
        )

    @staticmethod
    def list_type(slot: Slot | None) -> tuple[str, tuple[str, ...]]:
        """``("atomic"|"set"|"map", keys)``; lists without a list type use their patch strategy."""
        if slot is None:
            return "atomic", ()
        for node in (slot.prop, slot.node):
            kind = node.get("x-kubernetes-list-type")
            if kind == "map":
                return "map", tuple(node.get("x-kubernetes-list-map-keys", ()))
            if kind in ("set", "atomic"):
                return kind, ()
        strategy = slot.prop.get("x-kubernetes-patch-strategy", "")
        if "merge" in strategy.split(","):
            key = slot.prop.get("x-kubernetes-patch-merge-key")
            return ("map", (key,)) if key else ("set", ())
        return "atomic", ()


_SHARED_TYPES: dict[int, SchemaTypes] = {}


# ------------------------------------------------------------------------ path syntax


def canonical_json(value: Any) -> str:
    """JSON as the API server writes it inside ``k:``/``v:`` keys: compact, sorted keys."""
    return orjson.dumps(_integral(value), option=orjson.OPT_SORT_KEYS).decode()


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def element_string(element: PathElement) -> str:
    kind, value = element
    return f"{kind}:{value}"


def path_string(path: FieldPath) -> str:
    """The notation of conflict messages: ``.spec.containers[name="nginx"].image``."""
    out = []
    for kind, value in path:
        if kind == "f":
            out.append(f".{value}")
        elif kind == "k":
            fields = json.loads(value)
            pairs = ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items())
            out.append(f"[{pairs}]")
        elif kind == "v":
            out.append(f"[={value}]")
        else:
            out.append(f"[{value}]")
    return "".join(out)


def _element_sort_key(element: PathElement) -> tuple[int, str]:
    return ({"f": 0, "k": 1, "v": 2, "i": 3}.get(element[0], 4), str(element[1]))


def encode_fields(paths: FieldSet) -> dict[str, Any]:
    """A field set in the ``fieldsV1`` tree format (``".": {}`` marks a member with children)."""
    tree: dict[PathElement, Any] = {}
    members: set[FieldPath] = set(paths)
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})

    def emit(node: dict[PathElement, Any], prefix: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node and prefix in members:
            out["."] = {}
        for element in sorted(node, key=_element_sort_key):
            out[element_string(element)] = emit(node[element], (*prefix, element))
        return out

    encoded = emit(tree, ())
    fields_delta.remember(encoded)
    return encoded


def decode_fields(tree: Any) -> FieldSet:
    """The field set of a ``fieldsV1`` tree; malformed keys raise ``ValueError``."""
    out: FieldSet = set()

    def walk(node: Any, prefix: FieldPath) -> None:
        if not isinstance(node, dict):
            raise ValueError(f"fieldsV1 node at {path_string(prefix) or '.'} is not an object")
        if not node and prefix:
            out.add(prefix)
        for key, child in node.items():
            if key == ".":
                out.add(prefix)
                continue
            kind, sep, rest = key.partition(":")
            if not sep or kind not in ("f", "k", "v", "i"):
                raise ValueError(f"unknown fieldsV1 key {key!r}")
            if kind in ("k", "v"):
                rest = canonical_json(json.loads(rest))
            elif kind == "i":
                rest = int(rest)
            walk(child, (*prefix, (kind, rest)))

    walk(tree, ())
    return out


# ------------------------------------------------------------------------ list items


def _invalid(path: FieldPath, message: str) -> ApiError:
    where = path_string(path).lstrip(".")
    return ApiError(
        422,
        "Invalid",
        f"{where}: Invalid value: {message}",
        causes=[Cause("FieldValueInvalid", message, where)],
    )


def item_elements(
    types: SchemaTypes, slot: Slot | None, items: list[Any], path: FieldPath
) -> list[PathElement]:
    """The path element of every item of a ``map`` or ``set`` list; duplicates are invalid."""
    kind, keys = types.list_type(slot)
    item_slot = types.items(slot)
    out: list[PathElement] = []
    for item in items:
        if kind == "set":
            if isinstance(item, dict | list):
                raise _invalid(path, "a list of type set holds only scalar values")
            out.append(("v", canonical_json(item)))
            continue
        if not isinstance(item, dict):
            raise _invalid(path, f"an item of a list keyed by {list(keys)} must be an object")
        key: dict[str, Any] = {}
        for name in keys:
            if name in item:
                key[name] = item[name]
                continue
            default = _key_default(types, item_slot, name)
            if default is None:
                raise _invalid(
                    path,
                    f"associative list with keys has an element that omits key field {name!r} "
                    "(and doesn't have default value)",
                )
            key[name] = default
        out.append(("k", canonical_json(key)))
    seen: set[PathElement] = set()
    for element in out:
        if element in seen:
            raise _invalid(
                path, f"duplicate entries for key {element_string(element)} in an associative list"
            )
        seen.add(element)
    return out


def _key_default(types: SchemaTypes, item_slot: Slot | None, name: str) -> Any:
    prop = types.field(item_slot, name)
    if prop is not None and "default" in prop.node:
        return prop.node["default"]
    return _KEY_FIELD_DEFAULTS.get(name)


def _list_is_keyed(types: SchemaTypes, slot: Slot | None) -> bool:
    return types.list_type(slot)[0] in ("map", "set")


# ------------------------------------------------------------------------- field sets


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A shallow view of ``obj`` without the fields no manager owns."""
    view = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    metadata = view.get("metadata")
    if isinstance(metadata, dict):
        view["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    return view


def field_set(types: SchemaTypes, value: dict[str, Any], slot: Slot | None) -> FieldSet:
    """Every field an applied configuration sets: what its manager will own."""
    out: FieldSet = set()
    _collect(types, value, slot, (), out)
    return out - _UNOWNED


def _collect(types: SchemaTypes, value: Any, slot: Slot | None, path: FieldPath, out: FieldSet):
    if isinstance(value, dict):
        if types.map_atomic(slot):
            out.add(path)
            return
        for key, child in value.items():
            child_slot = types.field(slot, key)
            child_path = (*path, ("f", key))
            _collect(types, child, child_slot, child_path, out)
            if child is None or child == {} or types.is_map_entry(slot, key):
                out.add(child_path)
    elif isinstance(value, list):
        if not _list_is_keyed(types, slot):
            out.add(path)
            return
        item_slot = types.items(slot)
        for element, item in zip(item_elements(types, slot, value, path), value, strict=True):
            item_path = (*path, element)
            if element[0] == "k":
                _collect(types, item, item_slot, item_path, out)
            out.add(item_path)
    else:
        out.add(path)


# -------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    """Paths added, modified and removed going from one object to another."""

    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    @property
    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(
    types: SchemaTypes, old: dict[str, Any], new: dict[str, Any], slot: Slot | None
) -> Comparison:
    out = Comparison()
    _compare(types, old, new, slot, (), out)
    for paths in (out.added, out.modified, out.removed):
        paths -= _UNOWNED
    return out


def _is_empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _compare(
    types: SchemaTypes, old: Any, new: Any, slot: Slot | None, path: FieldPath, out: Comparison
) -> None:
    if old is None and new is None:
        return
    if old == new and type(old) is type(new):
        return
    if old is None:
        _mark_all(types, new, slot, path, out.added)
        return
    if new is None:
        _mark_all(types, old, slot, path, out.removed)
        return
    both_dicts = isinstance(old, dict | None) and isinstance(new, dict | None)
    both_lists = isinstance(old, list | None) and isinstance(new, list | None)
    container = isinstance(old, dict | list) or isinstance(new, dict | list)
    if container and _is_empty(old) and _is_empty(new):
        _compare_leaf(old, new, path, out)
    elif both_dicts and not types.map_atomic(slot):
        if types.is_granular_map(slot):
            if old is None:
                out.added.add(path)
            elif new is None:
                out.removed.add(path)
        old_map, new_map = old or {}, new or {}
        for key in [*old_map, *(k for k in new_map if k not in old_map)]:
            _compare(
                types,
                old_map.get(key),
                new_map.get(key),
                types.field(slot, key),
                (*path, ("f", key)),
                out,
            )
    elif both_lists and _list_is_keyed(types, slot):
        old_items, new_items = old or [], new or []
        old_by = dict(zip(item_elements(types, slot, old_items, path), old_items, strict=True))
        new_by = dict(zip(item_elements(types, slot, new_items, path), new_items, strict=True))
        item_slot = types.items(slot)
        for element in [*old_by, *(e for e in new_by if e not in old_by)]:
            item_path = (*path, element)
            before, after = old_by.get(element), new_by.get(element)
            if before is None:
                out.added.add(item_path)
            elif after is None:
                out.removed.add(item_path)
            if element[0] == "k":
                _compare(types, before, after, item_slot, item_path, out)
    else:
        _compare_leaf(old, new, path, out)


def _mark_all(
    types: SchemaTypes, value: Any, slot: Slot | None, path: FieldPath, into: FieldSet
) -> None:
    """What :func:`_compare` reports for a subtree present on one side only."""
    if isinstance(value, dict):
        if not value or types.map_atomic(slot):
            into.add(path)
            return
        if types.is_granular_map(slot):
            into.add(path)
        for key, child in value.items():
            if child is not None:
                _mark_all(types, child, types.field(slot, key), (*path, ("f", key)), into)
    elif isinstance(value, list):
        if not value or not _list_is_keyed(types, slot):
            into.add(path)
            return
        item_slot = types.items(slot)
        for element, item in zip(item_elements(types, slot, value, path), value, strict=True):
            item_path = (*path, element)
            into.add(item_path)
            if element[0] == "k":
                _mark_all(types, item, item_slot, item_path, into)
    elif value is not None:
        into.add(path)


def _compare_leaf(old: Any, new: Any, path: FieldPath, out: Comparison) -> None:
    if old is None:
        out.added.add(path)
    elif new is None:
        out.removed.add(path)
    elif not json_equal(old, new):
        out.modified.add(path)


# ---------------------------------------------------------------------------- merge


def merge(types: SchemaTypes, live: Any, config: Any, slot: Slot | None, path: FieldPath) -> Any:
    """The live object with an applied configuration merged in (the configuration wins)."""
    if isinstance(config, dict) and not types.map_atomic(slot):
        base = live if isinstance(live, dict) else {}
        merged: dict[str, Any] = {}
        for key, value in base.items():
            if key not in config:
                merged[key] = json_copy(value)
            elif config[key] is not None:
                merged[key] = merge(
                    types, value, config[key], types.field(slot, key), (*path, ("f", key))
                )
        for key, value in config.items():
            if key not in base and value is not None:
                merged[key] = merge(types, None, value, types.field(slot, key), (*path, ("f", key)))
        return merged
    if isinstance(config, list) and _list_is_keyed(types, slot):
        base = live if isinstance(live, list) else []
        return _merge_keyed_list(types, base, config, slot, path)
    return json_copy(config)


def _merge_keyed_list(
    types: SchemaTypes, live: list[Any], config: list[Any], slot: Slot | None, path: FieldPath
) -> list[Any]:
    """Merge two keyed lists: live-only items keep their place, the configuration's order wins.

    Items both lists hold are emitted in the configuration's order; an item only the live
    object holds stays right after the item it followed there.
    """
    live_keys = item_elements(types, slot, live, path)
    config_keys = item_elements(types, slot, config, path)
    live_by = dict(zip(live_keys, live, strict=True))
    config_by = dict(zip(config_keys, config, strict=True))
    shared = [k for k in config_keys if k in live_by]
    item_slot = types.items(slot)

    def merged_item(key: PathElement) -> Any:
        if key[0] == "v":
            return json_copy(config_by[key])
        return merge(types, live_by.get(key), config_by[key], item_slot, (*path, key))

    out: list[Any] = []
    done: set[PathElement] = set()
    li = ri = si = 0
    while li < len(live_keys) or ri < len(config_keys):
        next_shared = shared[si] if si < len(shared) else None
        if li < len(live_keys) and ri < len(config_keys):
            key = live_keys[li]
            if key == config_keys[ri]:
                out.append(merged_item(key))
                done.add(key)
                li, ri = li + 1, ri + 1
                si += 1 if key == next_shared else 0
                continue
            if key in config_by and next_shared is not None and key != next_shared:
                li += 1
                continue
        if li < len(live_keys):
            key = live_keys[li]
            if key not in config_by:
                out.append(json_copy(live[li]))
                li += 1
                continue
            if key in done:
                li += 1
                continue
        if ri < len(config_keys):
            key = config_keys[ri]
            out.append(merged_item(key))
            done.add(key)
            ri += 1
            if key == next_shared:
                si += 1
    return out


# ------------------------------------------------------------------------- removing


def remove_paths(types: SchemaTypes, obj: Any, paths: FieldSet, slot: Slot | None) -> Any:
    """A copy of ``obj`` without the subtrees at ``paths``."""
    if not paths:
        return obj
    if () in paths:
        return None
    children: dict[PathElement, FieldSet] = {}
    for path in paths:
        children.setdefault(path[0], set()).add(path[1:])
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            sub = children.get(("f", key))
            if sub is None:
                out[key] = value
                continue
            kept = remove_paths(types, value, sub, types.field(slot, key))
            if kept is not None:
                out[key] = kept
        return out
    if isinstance(obj, list) and _list_is_keyed(types, slot):
        item_slot = types.items(slot)
        elements = item_elements(types, slot, obj, ())
        result = []
        for element, item in zip(elements, obj, strict=True):
            sub = children.get(element)
            if sub is None:
                result.append(item)
                continue
            kept = remove_paths(types, item, sub, item_slot)
            if kept is not None:
                result.append(kept)
        return result
    return obj
