"""Rendered manifests kept out of FlowRuns: content-addressed snapshots in ConfigMaps.

A lifecycle flow's parameters name every zone's objects and every member's own objects.
Inline, they are copied into the run's status once per step that passes them on (the
zone, the apply step, its group member, …): a few hundred kilobytes per run for a
nine-broker Kafka, rewritten on every status write. Instead the operator stores each
distinct manifest list once, in a ConfigMap of the Application's namespace owned by the
Application, and the parameters carry a reference in its place::

    manifests: "snapshot:<namespace>/<configmap>#<sha256 of the list, 24 hex digits>"

The reference is content-addressed: the key is the hash of the stored text and the
ConfigMap's name the hash of everything in it, so a run applies exactly what it was
planned with even if the Application changed since (the planner plans the change once
the run ends), and a task refuses a snapshot whose text does not match its hash. A
snapshot that is gone (deleted by hand) fails the step for good, naming it; the planner
then plans again from the Application as it is. Snapshots are deleted with their
Application.

Tasks accept both forms: a list (runs started by an operator that stored manifests
inline, or a flow run by hand) is used as it is.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import orjson
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from pydantic import BaseModel, Field, model_validator

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext
from milkyway.kube.labels import APPLICATION

log = logging.getLogger("milkyway.operator")

PREFIX = "snapshot:"
SNAPSHOT_LABEL = "milkyway.ebay.com/render-snapshot"
MANIFEST_KEYS = ("manifests", "memberManifests")
"""The fields of a zone or member entry that hold manifest lists."""
MAX_SNAPSHOT_BYTES = 900 * 1024
"""Larger renders stay inline: a ConfigMap holds at most 1 MiB."""
_KEY_DIGITS = 24
_CACHE_SIZE = 128


def _digest(text: str, digits: int = _KEY_DIGITS) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


@dataclass(frozen=True)
class Snapshot:
    """The ConfigMap to store before a run whose parameters refer to it."""

    namespace: str
    name: str
    data: Mapping[str, str]

    def manifest(self, application: str, owner: Sequence[Mapping[str, Any]]) -> ConfigMap:
        return ConfigMap(
            metadata=ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={APPLICATION: application, SNAPSHOT_LABEL: "true"},
                ownerReferences=[dict(o) for o in owner],  # type: ignore[misc]
            ),
            data=dict(self.data),
            immutable=True,
        )


def externalize(
    params: Mapping[str, Any], application: str, namespace: str
) -> tuple[dict[str, Any], Snapshot | None]:
    """``params`` with the non-empty manifest lists of its zones and members
    (:data:`CARRIERS`) replaced by references, and the snapshot holding them (``None``,
    and ``params`` unchanged, when there is nothing to move or the lists are too large for
    one ConfigMap). Other params, a flow's own ``manifests`` among them, stay as they are:
    only the lifecycle flows' tasks know the reference form."""
    texts: dict[str, tuple[str, str]] = {}
    for where, entry, field, value in _manifest_lists(params):
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        texts[f"{where}/{entry}/{field}"] = (_digest(text), text)
    data = dict(texts.values())
    if not data or sum(len(t) for t in data.values()) > MAX_SNAPSHOT_BYTES:
        return dict(params), None
    name = f"{application}-render-{_digest(''.join(sorted(data)), 16)}"
    result = dict(params)
    for where in CARRIERS:
        if not isinstance(params.get(where), list):
            continue
        entries = []
        for index, entry in enumerate(params[where]):
            if isinstance(entry, Mapping):
                entry = {
                    field: (
                        f"{PREFIX}{namespace}/{name}#{texts[f'{where}/{index}/{field}'][0]}"
                        if f"{where}/{index}/{field}" in texts
                        else value
                    )
                    for field, value in entry.items()
                }
            entries.append(entry)
        result[where] = entries
    return result, Snapshot(namespace, name, data)


CARRIERS = ("zones", "grow", "shrink", "members")
"""The lifecycle flows' params whose entries carry manifest lists (each entry's
``manifests``/``memberManifests``)."""


def _manifest_lists(params: Mapping[str, Any]) -> list[tuple[str, int, str, list[Any]]]:
    found = []
    for where in CARRIERS:
        entries = params.get(where)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            for field in MANIFEST_KEYS:
                value = entry.get(field)
                if isinstance(value, list) and value:
                    found.append((where, index, field, value))
    return found


async def store(client: Any, snapshot: Snapshot, application: str, owner: Sequence[Any]) -> None:
    """Create the snapshot's ConfigMap; one that exists already holds the same content
    (its name is the hash of it)."""
    try:
        await client.create(snapshot.manifest(application, owner))
    except ApiError as exc:
        if exc.status.code != 409:
            raise


_cache: OrderedDict[str, str] = OrderedDict()
"""Resolved references: content-addressed, so never stale; bounded, oldest out first."""


async def manifests(ctx: TaskContext, value: list[dict[str, Any]] | str) -> list[dict[str, Any]]:
    """The manifest list ``value`` is or refers to."""
    if isinstance(value, list):
        return value
    if not value:
        return []
    cached = _cache.get(value)
    if cached is not None:
        _cache.move_to_end(value)
        return list(orjson.loads(cached))
    namespace, name, key = _parse(value)
    if ctx.management is None:
        raise FatalError(
            f"{value}: this engine has no client of the management cluster to read render "
            "snapshots from; run the flow from the operator, or pass the manifests inline"
        )
    try:
        configmap = await ctx.management.get(ConfigMap, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            raise FatalError(
                f"render snapshot {namespace}/{name} is gone, so this run cannot apply what "
                "it was planned with; the operator plans the change again from the "
                "Application once the run has failed"
            ) from None
        raise RetryableError(f"reading render snapshot {namespace}/{name}: {exc}") from exc
    text = (configmap.data or {}).get(key)
    if text is None:
        raise FatalError(f"render snapshot {namespace}/{name} has no entry {key}")
    if _digest(text) != key:
        raise FatalError(
            f"render snapshot {namespace}/{name} entry {key} does not match its hash: it was "
            "changed after the run was planned; the run stops rather than apply it"
        )
    _cache[value] = text
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return list(orjson.loads(text))


def _parse(value: str) -> tuple[str, str, str]:
    body = value[len(PREFIX) :] if value.startswith(PREFIX) else ""
    where, _, key = body.partition("#")
    namespace, _, name = where.partition("/")
    if not (namespace and name and key):
        raise FatalError(
            f"manifests {value!r}: neither a list of objects nor a reference "
            f"'{PREFIX}<namespace>/<configmap>#<key>'"
        )
    return namespace, name, key


_FIELDS = {"manifests": "manifests", "memberManifests": "member_manifests"}


class SnapshotRefs(BaseModel):
    """Task parameters whose ``manifests``/``memberManifests`` may be references: a
    reference is set aside while the parameters are read, and :meth:`with_manifests`
    returns the parameters with the lists it refers to."""

    snapshot_refs: dict[str, str] = Field(default_factory=dict, alias="snapshotRefs")

    @model_validator(mode="before")
    @classmethod
    def _set_aside_references(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        refs = {k: v for k, v in data.items() if k in _FIELDS and isinstance(v, str)}
        if not refs:
            return data
        return {
            **{k: v for k, v in data.items() if k not in refs},
            "snapshotRefs": refs,
        }

    async def with_manifests(self, ctx: TaskContext) -> Self:
        if not self.snapshot_refs:
            return self
        update: dict[str, Any] = {"snapshot_refs": {}}
        for key, ref in self.snapshot_refs.items():
            update[_FIELDS[key]] = await manifests(ctx, ref)
        return self.model_copy(update=update)
