"""Change an encoded field set by a few paths instead of decoding and re-encoding it whole.

A controller that rewrites a large status on every write owns thousands of paths, and each
write adds or drops only a handful. :func:`changed_tree` edits the ``fieldsV1`` tree
directly and yields exactly what :func:`~milkyway.sim.apiserver.managed_fields.encode_fields`
would for the changed set, key order included. That only holds for trees in the canonical
form ``encode_fields`` writes, so trees are recognised by a digest of their bytes recorded
when they were produced; any other tree (one a client wrote by hand) takes the slow path.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import orjson

FieldPath = tuple[tuple[str, Any], ...]

_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}
_REMEMBERED = 4096
_canonical: OrderedDict[bytes, None] = OrderedDict()


def _digest(tree: dict[str, Any]) -> bytes:
    return hashlib.blake2b(orjson.dumps(tree), digest_size=16).digest()


def remember(tree: dict[str, Any]) -> None:
    """Record ``tree`` as canonical (it came from ``encode_fields`` or :func:`changed_tree`)."""
    key = _digest(tree)
    _canonical[key] = None
    _canonical.move_to_end(key)
    while len(_canonical) > _REMEMBERED:
        _canonical.popitem(last=False)


def is_canonical(tree: Any) -> bool:
    if not isinstance(tree, dict):
        return False
    try:
        key = _digest(tree)
    except (TypeError, orjson.JSONEncodeError):
        return False
    if key not in _canonical:
        return False
    _canonical.move_to_end(key)
    return True


def _key(element: tuple[str, Any]) -> str:
    return f"{element[0]}:{element[1]}"


def _sort_key(key: str) -> tuple[int, str]:
    return (_KIND_ORDER.get(key[0], 4), key[2:])


def is_member(tree: dict[str, Any], path: FieldPath) -> bool:
    """Whether a canonical ``tree`` holds ``path`` (a leaf, or a node marked ``"."``)."""
    node: Any = tree
    for element in path:
        if not isinstance(node, dict):
            return False
        node = node.get(_key(element))
        if node is None:
            return False
    if not path:
        return "." in node
    return isinstance(node, dict) and (not node or "." in node)


def changed_tree(
    tree: dict[str, Any], removed: set[FieldPath], added: set[FieldPath]
) -> dict[str, Any] | None:
    """``encode_fields((decode_fields(tree) - removed) | added)``, or None if ``tree`` is not
    canonical. Returns ``tree`` itself when the set does not change, else a new tree that
    shares the subtrees it did not change with ``tree``."""
    drop = [p for p in removed if is_member(tree, p)]
    add = [p for p in added if p in removed or not is_member(tree, p)]
    if not drop and not add:
        return tree
    if () in removed or () in added or not is_canonical(tree):
        return None
    out = dict(tree)
    own: dict[int, dict[str, Any]] = {id(out): out}
    touched: dict[int, dict[str, Any]] = {}
    for path in drop:
        _drop(out, path, own)
    for path in add:
        _add(out, path, own, touched)
    for node in touched.values():
        _resort(node)
    remember(out)
    return out


def _child(node: dict[str, Any], key: str, own: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``node[key]``, first copied if it is still shared with the input tree."""
    child = node[key]
    if id(child) not in own:
        child = node[key] = dict(child)
        own[id(child)] = child
    return child


def _drop(tree: dict[str, Any], path: FieldPath, own: dict[int, dict[str, Any]]) -> None:
    nodes = [tree]
    for element in path:
        nodes.append(_child(nodes[-1], _key(element), own))
    node = nodes[-1]
    if any(k != "." for k in node):
        node.pop(".", None)
        return
    for depth in range(len(path), 0, -1):
        parent = nodes[depth - 1]
        del parent[_key(path[depth - 1])]
        if parent and any(k != "." for k in parent):
            return
        if parent:
            parent.clear()  # a member that lost its last child is a leaf again
            return
        if depth == 1:
            return


def _add(
    tree: dict[str, Any],
    path: FieldPath,
    own: dict[int, dict[str, Any]],
    touched: dict[int, dict[str, Any]],
) -> None:
    node = tree
    created = False
    for depth, element in enumerate(path):
        key = _key(element)
        if key in node:
            child = _child(node, key, own)
            created = False
        else:
            if not node and depth > 0 and not created:
                node["."] = {}  # a leaf member getting children keeps its membership mark
            node[key] = child = {}
            own[id(child)] = child
            touched[id(node)] = node
            created = True
        node = child
    if node and "." not in node:
        node["."] = {}
        touched[id(node)] = node


def _resort(node: dict[str, Any]) -> None:
    members = "." in node
    children = sorted((k for k in node if k != "."), key=_sort_key)
    values = {k: node[k] for k in children}
    node.clear()
    if members:
        node["."] = {}
    node.update(values)
