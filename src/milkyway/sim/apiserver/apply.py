"""Server-side apply and the ``managedFields`` bookkeeping of every write.

Each writer of an object is a *manager*: an ``Apply`` manager owns exactly the fields of
its last applied configuration; an ``Update`` manager (a plain create, replace or patch)
owns the fields it changed. Ownership is what makes apply safe between tools:

* applying merges the configuration into the live object (lists keyed by their
  ``x-kubernetes-list-map-keys`` merge item by item, other lists are replaced whole);
* a field this manager applied before and no longer applies is removed, unless another
  manager still owns it;
* changing a field another manager owns is a ``409 Conflict`` naming every such field and
  its owner, unless ``force`` moves the ownership to the applier;
* setting a field to the value it already has shares its ownership instead.

The result carries ``metadata.managedFields`` in the real ``FieldsV1`` format, so
``kubectl get -o yaml --show-managed-fields`` and client libraries read it unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from milkyway.sim.apiserver import fields_delta
from milkyway.sim.apiserver.errors import ApiError, Cause, bad_request
from milkyway.sim.apiserver.json_values import json_copy, json_equal, short_json
from milkyway.sim.apiserver.managed_fields import (
    FieldPath,
    FieldSet,
    SchemaTypes,
    Slot,
    compare,
    decode_fields,
    element_string,
    encode_fields,
    field_set,
    merge,
    path_string,
    remove_paths,
    strip_server_fields,
)
from milkyway.sim.apiserver.schemas import BuiltinSchemas

__all__ = ["MAX_UPDATE_MANAGERS", "record_update", "server_side_apply"]

MAX_UPDATE_MANAGERS = 10
"""Beyond this many ``Update`` entries the oldest fold into one ``ancient-changes`` entry."""

_ANCIENT_CHANGES = "ancient-changes"
_KUBECTL_APPLIER = "kubectl"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class _Manager:
    """One ``managedFields`` entry.

    The field set is decoded from ``fieldsV1`` only when a write touches a path the entry
    owns; untouched entries are written back as they were, which keeps the bookkeeping
    of small updates cheap on objects with many managers.
    """

    def __init__(
        self,
        manager: str,
        operation: str,
        api_version: str,
        subresource: str,
        time: str | None,
        fields: FieldSet | None = None,
        encoded: dict[str, Any] | None = None,
    ) -> None:
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self._fields = fields if fields is not None or encoded is not None else set()
        self._encoded = encoded if fields is None else None

    @property
    def fields(self) -> FieldSet:
        if self._fields is None:
            try:
                self._fields = decode_fields(self._encoded)
            except (ValueError, TypeError):
                self._fields = set()
            self._encoded = None
        return self._fields

    @fields.setter
    def fields(self, value: FieldSet) -> None:
        self._fields = value
        self._encoded = None

    def owned_among(self, paths: FieldSet) -> FieldSet:
        """The subset of ``paths`` this entry owns."""
        if self._fields is None:
            tree = self._encoded
            if not any(_tree_has(tree, p) for p in paths):
                return set()
        return self.fields & paths

    def discard(self, paths: FieldSet) -> None:
        if paths and self.owned_among(paths):
            self.fields = self.fields - paths

    def take(self, removed: FieldSet, changed: FieldSet) -> None:
        """Lose ``removed`` and own ``changed``; an entry still encoded is edited as a tree,
        so a writer that rewrites a large set of fields it owns pays no decode."""
        if self._fields is None and isinstance(self._encoded, dict):
            tree = fields_delta.changed_tree(self._encoded, removed, changed)
            if tree is not None:
                self._encoded = tree
                return
        self.fields = (self.fields - removed) | changed

    def is_empty(self) -> bool:
        if self._fields is None:
            return not self._encoded
        return not self._fields

    @property
    def ident(self) -> tuple[str, ...]:
        return _ident(self.manager, self.operation, self.api_version, self.subresource)

    def describe(self) -> str:
        out = json.dumps(self.manager)
        if self.subresource:
            out += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            out += f" using {self.api_version}"
        return out

    def to_entry(self, *, copy: bool = True) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        if self._fields is None:
            entry["fieldsV1"] = json_copy(self._encoded) if copy else self._encoded
        else:
            entry["fieldsV1"] = encode_fields(self._fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def _tree_has(tree: Any, path: FieldPath) -> bool:
    node = tree
    for element in path:
        if not isinstance(node, dict):
            return False
        node = node.get(element_string(element))
        if node is None:
            return False
    return True


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    schema: dict[str, Any] | None,
    schemas: BuiltinSchemas | None,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """Apply ``applied`` as ``manager`` to ``live`` (``None`` when creating).

    ``schema`` is the type's definition (a built-in definition or a CRD version's
    ``openAPIV3Schema``), or ``None`` to treat every list as atomic. Returns the new object
    with ``metadata.managedFields``; raises ``409 Conflict`` on fields other managers own.
    ``subresource`` is ``"status"`` for an apply to the status endpoint, which keeps its
    own entry.
    """
    _check_applied(live, applied, manager)
    types = SchemaTypes.for_schemas(schemas)
    slot = types.slot(schema)
    live_body = _without_managed_fields(live or {})
    managers = _decode_managers(live or {})

    applied_set = field_set(types, strip_server_fields(applied), slot)
    merged = merge(types, live_body, applied, slot, ())

    me = _find(managers, _ident(manager, "Apply", "", subresource))
    created = me is None
    if me is None:
        me = _Manager(manager, "Apply", applied["apiVersion"], subresource, None, set())
        managers.append(me)
    last_applied = me.fields
    me.fields = applied_set
    me.api_version = applied["apiVersion"]
    if last_applied:
        merged = _prune(types, merged, slot, last_applied, managers)

    changes = compare(types, strip_server_fields(live_body), strip_server_fields(merged), slot)
    conflicts: list[tuple[_Manager, FieldPath]] = []
    for other in managers:
        if other is me:
            continue
        conflicts.extend((other, path) for path in other.owned_among(changes.changed))
        other.discard(changes.removed)
    if conflicts and not force and manager == _KUBECTL_APPLIER:
        allowed = _client_side_applied(types, slot, live_body)
        if all(path in allowed for _, path in conflicts):
            force = True
        else:
            conflicts = [(m, path) for m, path in conflicts if path not in allowed]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for other, path in conflicts:
        other.discard({path})

    if created or not json_equal(live_body, merged):
        me.time = now
    _store_managers(merged, managers)
    return merged


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    operation: str,
    now: str,
    subresource: str = "",
    schema: dict[str, Any] | None = None,
    schemas: BuiltinSchemas | None = None,
    owned: bool = False,
) -> dict[str, Any]:
    """``new`` with ``metadata.managedFields`` updated for a create, update or patch.

    ``manager`` takes the fields this write changed from whoever owned them; every manager
    loses the fields it removed. ``schema`` defaults to the built-in definition of
    ``new``'s kind, if any. A request that sets ``managedFields: [{}]`` clears them, as on a
    real server. ``owned`` says nobody else holds ``new`` and nobody mutates ``old`` or the
    result: ``new`` is updated and returned instead of copied, and managedFields trees are
    shared with ``old`` and ``new`` where unchanged (as stored objects share them).
    """
    if not isinstance(new.get("metadata"), dict):
        return new if owned else json_copy(new)
    if owned:
        requested = new["metadata"].pop("managedFields", None)
        result = new
    else:
        # managedFields are rebuilt below; copying them first would be wasted work.
        result = json_copy(_without_managed_fields(new))
        requested = new["metadata"].get("managedFields")
    if _is_reset(requested):
        return result
    if schema is None and schemas is None:
        schemas, schema = _builtin_schema(result)
    types = SchemaTypes.for_schemas(schemas)
    slot = types.slot(schema)
    managers = _decode_managers({"metadata": {"managedFields": requested}}) if requested else []
    if not managers:
        managers = _decode_managers(old or {})

    old_body = strip_server_fields(_without_managed_fields(old or {}))
    new_body = strip_server_fields(_without_managed_fields(result))
    changes = compare(types, old_body, new_body, slot)
    api_version = str(result.get("apiVersion", ""))
    taken = changes.removed | changes.changed
    me = (
        _find(managers, _ident(manager, operation, api_version, subresource))
        if changes.changed
        else None
    )
    for entry in managers:
        # An update always succeeds and takes the fields it changed from their owners.
        if entry is not me:
            entry.discard(taken)
    if changes.changed:
        if me is None:
            me = _Manager(manager, operation, api_version, subresource, None, set())
            managers.append(me)
        me.take(changes.removed, changes.changed)
        me.time = now
    _store_managers(result, managers, copy=not owned)
    return result


# ------------------------------------------------------------------------- helpers


def _check_applied(live: dict[str, Any] | None, applied: Any, manager: str) -> None:
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the apply configuration must be an object")
    if not manager:
        raise bad_request(
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply requests"
        )
    if not applied.get("kind"):
        raise bad_request(
            f"Object 'Kind' is missing in '{short_json(applied)}' (an apply configuration sets "
            "apiVersion and kind)"
        )
    expected = (live or {}).get("apiVersion")
    given = applied.get("apiVersion")
    if not given or (expected and given != expected):
        raise bad_request(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {given or ''}, expected: {expected or '<apiVersion>'}"
        )
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")


def _builtin_schema(obj: dict[str, Any]) -> tuple[BuiltinSchemas, dict[str, Any] | None]:
    schemas = BuiltinSchemas.for_version()
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return schemas, schemas.definition_for((group, version, str(obj.get("kind", ""))))


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


def _is_reset(requested: Any) -> bool:
    return isinstance(requested, list) and len(requested) == 1 and requested[0] == {}


def _decode_managers(obj: dict[str, Any]) -> list[_Manager]:
    """The managers recorded on ``obj``; entries that do not decode are dropped."""
    metadata = obj.get("metadata")
    entries = metadata.get("managedFields") if isinstance(metadata, dict) else None
    if not isinstance(entries, list):
        return []
    managers: list[_Manager] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("operation") not in ("Apply", "Update"):
            continue
        encoded = entry.get("fieldsV1", {})
        if not isinstance(encoded, dict):
            continue
        decoded = _Manager(
            str(entry.get("manager", "")),
            entry["operation"],
            str(entry.get("apiVersion", "")),
            str(entry.get("subresource", "")),
            entry.get("time"),
            encoded=encoded,
        )
        same = _find(managers, decoded.ident)
        if same is None:
            managers.append(decoded)
        else:
            same.fields |= decoded.fields
    return managers


def _ident(manager: str, operation: str, api_version: str, subresource: str) -> tuple[str, ...]:
    """Which entry a write lands in: an applier keeps one entry whatever version it applies
    with; an updater has one entry per API version, as on a real server."""
    return (manager, operation, "" if operation == "Apply" else api_version, subresource)


def _find(managers: list[_Manager], ident: tuple[str, ...]) -> _Manager | None:
    return next((m for m in managers if m.ident == ident), None)


def _prune(
    types: SchemaTypes,
    merged: dict[str, Any],
    slot: Slot | None,
    last_applied: FieldSet,
    managers: list[_Manager],
) -> dict[str, Any]:
    """Remove what this manager applied last time and nobody owns any more.

    A list item goes whole, even when another manager owns a field inside it: ownership of
    an item is ownership of the item itself, as on a real server.
    """
    present = field_set(types, strip_server_fields(merged), slot)
    drop = last_applied & present
    for entry in managers:
        drop -= entry.owned_among(drop)
    pruned = remove_paths(types, merged, drop, slot)
    assert isinstance(pruned, dict)
    return pruned


def _client_side_applied(types: SchemaTypes, slot: Slot | None, live: dict[str, Any]) -> FieldSet:
    """Fields ``kubectl apply`` (client-side) last applied that the live object still holds.

    ``kubectl apply --server-side`` may take these over without a conflict, which is how a
    real server lets an object move from client-side to server-side apply.
    """
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(_LAST_APPLIED) if isinstance(annotations, dict) else None
    if not isinstance(raw, str) or not raw:
        return set()
    try:
        last = json.loads(raw)
    except ValueError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
        return set()
    try:
        last_view = strip_server_fields(last)
        fields = field_set(types, last_view, slot)
        diverged = compare(types, last_view, strip_server_fields(live), slot)
    except ApiError:
        return set()
    return fields - diverged.modified - diverged.added - diverged.removed


def _conflict_error(conflicts: list[tuple[_Manager, FieldPath]]) -> ApiError:
    ordered = sorted(conflicts, key=lambda c: (c[0].describe(), path_string(c[1])))
    causes = [
        Cause("FieldManagerConflict", f"conflict with {m.describe()}", path_string(path))
        for m, path in ordered
    ]
    if len(ordered) == 1:
        owner, path = ordered[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {owner.describe()}: {path_string(path)}"
        )
    else:
        lines: list[str] = []
        current = ""
        for owner, path in ordered:
            if owner.describe() != current:
                current = owner.describe()
                lines.append(f"conflicts with {current}:")
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, causes=causes)


def _store_managers(obj: dict[str, Any], managers: list[_Manager], *, copy: bool = True) -> None:
    """Write ``managers`` into ``obj``; without ``copy`` the entries share their fieldsV1
    trees with where they were read from, for callers that never mutate either."""
    kept = _cap_update_managers([m for m in managers if not m.is_empty()])
    kept.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    metadata = obj.setdefault("metadata", {})
    if kept:
        metadata["managedFields"] = [m.to_entry(copy=copy) for m in kept]
    else:
        metadata.pop("managedFields", None)


def _cap_update_managers(managers: list[_Manager]) -> list[_Manager]:
    updates = [m for m in managers if m.operation == "Update"]
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return managers
    oldest_first = sorted(updates, key=lambda m: (m.time or "", m.manager))
    folded = oldest_first[: len(updates) - MAX_UPDATE_MANAGERS + 1]
    ancient = next((m for m in folded if m.manager == _ANCIENT_CHANGES), None)
    if ancient is None:
        ancient = _Manager(_ANCIENT_CHANGES, "Update", folded[-1].api_version, "", None, set())
    for entry in folded:
        ancient.fields |= entry.fields
    ancient.time = max((m.time or "" for m in folded), default="") or None
    return [m for m in managers if m not in folded] + [ancient]
