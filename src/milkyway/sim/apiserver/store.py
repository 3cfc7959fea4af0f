"""The revisioned object store of one cluster, with watch history and watchers.

Like etcd behind a real API server, a cluster has one revision counter: every write bumps
it and the new value becomes the object's ``resourceVersion``. Objects are indexed by
resource and namespace so a write costs O(1) plus the watchers of that one resource, and a
bounded history per resource lets watchers resume from a resourceVersion without gaps.

Stored objects are never mutated after they are committed: a write stores a new dict. That
lets events, lists and history share them without copying; whoever hands them to code that
may mutate them (the in-process API) copies first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from milkyway.sim.apiserver.errors import ApiError, gone
from milkyway.sim.apiserver.selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

ResourceKey = tuple[str, str]
"""(group, plural): every served version of a resource shares one set of objects."""

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

DEFAULT_HISTORY = 5000
DEFAULT_WATCH_BACKLOG = 100_000


@dataclass(slots=True)
class Event:
    """A committed change. ``object`` is the stored state after it (before it, for DELETED)."""

    type: str
    object: dict[str, Any]
    revision: int
    key: ResourceKey
    old: dict[str, Any] | None = None
    encoded: bytes | None = None
    removed: dict[str, Any] | None = None
    """For DELETED: the object as stored before the deletion (to list an older revision)."""


def deep_copy(value: Any) -> Any:
    """Copy a JSON-like value; much cheaper than ``copy.deepcopy`` for plain dicts and lists."""
    if type(value) is dict:
        return {
            k: deep_copy(v) if type(v) is dict or type(v) is list else v for k, v in value.items()
        }
    if type(value) is list:
        return [deep_copy(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


@dataclass(slots=True)
class WatchFilter:
    namespace: str | None = None
    labels: LabelSelector = field(default_factory=LabelSelector)
    fields: FieldSelector = field(default_factory=FieldSelector)

    def matches(self, obj: dict[str, Any]) -> bool:
        md = obj.get("metadata", {})
        if self.namespace is not None and md.get("namespace", "") != self.namespace:
            return False
        if self.labels.requirements and not self.labels.matches(md.get("labels")):
            return False
        return not self.fields.requirements or self.fields.matches(obj)

    def translate(self, event: Event) -> Event | None:
        """The event as this watcher sees it: objects moving in or out of the selection
        become ADDED or DELETED, as the real API server's watch cache does."""
        now = self.matches(event.object)
        if event.type != MODIFIED or event.old is None:
            return event if now else None
        before = self.matches(event.old)
        if now and before:
            return event
        if now:
            return Event(ADDED, event.object, event.revision, event.key, event.old)
        if before:
            return Event(DELETED, event.object, event.revision, event.key, event.old)
        return None


class Watcher:
    """One consumer of a resource's events, fed synchronously as writes commit.

    Consume with ``async for event in watcher`` or :meth:`next`; :meth:`drain` returns what
    is queued without waiting. A watcher whose backlog grows past ``max_backlog`` is closed
    with a 410 error, as a real API server drops a watcher that cannot keep up.
    """

    def __init__(
        self,
        store: Store,
        key: ResourceKey,
        flt: WatchFilter,
        *,
        callback: Callable[[Event], None] | None = None,
        max_backlog: int = DEFAULT_WATCH_BACKLOG,
    ) -> None:
        self.store = store
        self.key = key
        self.filter = flt
        self.callback = callback
        self.max_backlog = max_backlog
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.error: ApiError | None = None

    def push(self, event: Event) -> None:
        seen = self.filter.translate(event)
        if seen is None or self.closed:
            return
        if self.callback is not None:
            try:
                self.callback(seen)
            except Exception:
                # The write has committed; a subscriber's failure must not fail the writer.
                log.exception("watch subscriber %r failed on %s", self.callback, seen.type)
            return
        self._queue.append(seen)
        if len(self._queue) > self.max_backlog:
            self.close(gone("the watcher fell too far behind; restart the watch"))
            return
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, error: ApiError | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self.store._detach(self)
            self._wake()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Event:
        event = await self.next()
        if event is None:
            raise StopAsyncIteration
        return event

    def drain(self) -> list[Event]:
        out = list(self._queue)
        self._queue.clear()
        return out

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def wait(self, max_wait: float | None = None) -> bool:
        """Wait until an event is queued or the watcher closes; False on timeout."""
        if self._queue or self.closed:
            return True
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that arrives as the waiter completes, and a closed watch would keep streaming.
            async with asyncio.timeout(max_wait):
                await asyncio.shield(self._waiter)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiter = None

    async def next(self, max_wait: float | None = None) -> Event | None:
        """The next event, or None when closed (or after ``max_wait`` seconds)."""
        if not self._queue:
            await self.wait(max_wait)
        if self._queue:
            return self._queue.popleft()
        return None


@dataclass
class _Table:
    by_ns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    history: deque[Event] = field(default_factory=deque)
    compacted: int = 0
    watchers: set[Watcher] = field(default_factory=set)
    count: int = 0


ChangeListener = Callable[[Event], None]


class Store:
    """Objects of one cluster by resource, namespace ("" for cluster-scoped) and name."""

    def __init__(self, *, history: int = DEFAULT_HISTORY) -> None:
        self.revision = 0
        self.history_size = history
        self._tables: dict[ResourceKey, _Table] = {}
        self._dependents: dict[str, set[tuple[ResourceKey, str, str]]] = {}
        self.listeners: list[ChangeListener] = []
        self._floor = 0
        self._dropped: dict[ResourceKey, int] = {}

    def _table(self, key: ResourceKey) -> _Table:
        table = self._tables.get(key)
        if table is None:
            # A resource never written since the history began has lost no events.
            floor = max(self._floor, self._dropped.get(key, 0))
            table = self._tables[key] = _Table(compacted=floor)
        return table

    def get(self, key: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        table = self._tables.get(key)
        if table is None:
            return None
        return table.by_ns.get(namespace, {}).get(name)

    def objects(self, key: ResourceKey, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored objects of a resource, optionally in one namespace (unordered)."""
        table = self._tables.get(key)
        if table is None:
            return
        if namespace is not None:
            yield from table.by_ns.get(namespace, {}).values()
            return
        for objs in table.by_ns.values():
            yield from objs.values()

    def sorted_objects(
        self, key: ResourceKey, namespace: str | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(namespace, name, object) sorted the way a real list is: by namespace, then name."""
        table = self._tables.get(key)
        if table is None:
            return []
        spaces = [namespace] if namespace is not None else sorted(table.by_ns)
        out: list[tuple[str, str, dict[str, Any]]] = []
        for ns in spaces:
            objs = table.by_ns.get(ns)
            if objs:
                out.extend((ns, name, objs[name]) for name in sorted(objs))
        return out

    def sorted_objects_at(
        self, key: ResourceKey, namespace: str | None, revision: int
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """Like :meth:`sorted_objects`, as the resource stood at ``revision``; rolled back
        through the history, as etcd answers a read at an older revision. 410 Expired when
        the history no longer reaches back that far."""
        table = self._tables.get(key)
        compacted = (
            table.compacted if table is not None else max(self._floor, self._dropped.get(key, 0))
        )
        if revision < compacted:
            raise gone("The resourceVersion for the provided list is too old.")
        state = {(ns, name): obj for ns, name, obj in self.sorted_objects(key, namespace)}
        if table is not None:
            for event in reversed(table.history):
                if event.revision <= revision:
                    break
                md = event.object["metadata"]
                where = (md.get("namespace", ""), md["name"])
                if namespace is not None and where[0] != namespace:
                    continue
                before = event.old if event.type == MODIFIED else event.removed
                if before is None:
                    state.pop(where, None)
                else:
                    state[where] = before
        return [(ns, name, state[(ns, name)]) for ns, name in sorted(state)]

    def count(self, key: ResourceKey, namespace: str | None = None) -> int:
        table = self._tables.get(key)
        if table is None:
            return 0
        if namespace is None:
            return table.count
        return len(table.by_ns.get(namespace, {}))

    def resource_keys(self) -> list[ResourceKey]:
        return [k for k, t in self._tables.items() if t.count]

    def namespaces_in_use(self, key: ResourceKey) -> list[str]:
        table = self._tables.get(key)
        return [ns for ns, objs in table.by_ns.items() if objs] if table else []

    def dependents(self, owner_uid: str) -> list[tuple[ResourceKey, str, str]]:
        return list(self._dependents.get(owner_uid, ()))

    def commit(
        self, key: ResourceKey, event_type: str, obj: dict[str, Any], *, bump: bool = True
    ) -> Event:
        """Store (or, for DELETED, remove) ``obj`` at the next revision and notify watchers.

        ``obj`` becomes the stored object; its ``metadata.resourceVersion`` is set here.
        """
        md = obj["metadata"]
        ns = md.get("namespace", "")
        name = md["name"]
        table = self._table(key)
        if bump:
            self.revision += 1
        md["resourceVersion"] = str(self.revision)
        space = table.by_ns.setdefault(ns, {})
        old = space.get(name)
        if event_type == DELETED:
            if old is not None:
                del space[name]
                table.count -= 1
                if not space:
                    del table.by_ns[ns]
            self._index_owners(key, ns, name, old, None)
        else:
            space[name] = obj
            if old is None:
                table.count += 1
            self._index_owners(key, ns, name, old, obj)
        event = Event(event_type, obj, self.revision, key, old if event_type == MODIFIED else None)
        if event_type == DELETED:
            event.removed = old
        history = table.history
        history.append(event)
        if len(history) > self.history_size:
            table.compacted = history.popleft().revision
        for watcher in list(table.watchers):
            watcher.push(event)
        for listener in self.listeners:
            listener(event)
        return event

    def load(self, key: ResourceKey, obj: dict[str, Any]) -> None:
        """Put a persisted object back without an event (used when restoring from disk)."""
        md = obj["metadata"]
        ns, name = md.get("namespace", ""), md["name"]
        table = self._table(key)
        space = table.by_ns.setdefault(ns, {})
        if name not in space:
            table.count += 1
        space[name] = obj
        self._index_owners(key, ns, name, None, obj)

    def reset_history(self) -> None:
        """Forget history, e.g. after loading: watches must start from the current revision."""
        self._floor = self.revision
        for table in self._tables.values():
            table.history.clear()
            table.compacted = self.revision

    def drop_resource(self, key: ResourceKey) -> None:
        self._dropped[key] = self.revision
        table = self._tables.pop(key, None)
        if table:
            for watcher in list(table.watchers):
                watcher.close()

    def _index_owners(
        self,
        key: ResourceKey,
        ns: str,
        name: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        before = _owner_uids(old)
        after = _owner_uids(new)
        if before == after:
            return
        ref = (key, ns, name)
        for uid in before - after:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        for uid in after - before:
            self._dependents.setdefault(uid, set()).add(ref)

    def watch(
        self,
        key: ResourceKey,
        flt: WatchFilter,
        *,
        since: int | None,
        callback: Callable[[Event], None] | None = None,
        initial: list[dict[str, Any]] | None = None,
        max_backlog: int = DEFAULT_WATCH_BACKLOG,
    ) -> Watcher:
        """Attach a watcher. ``since``: replay events after that revision (410 if compacted).

        ``initial`` objects are delivered first as ADDED events (the "list then watch" start
        of a watch without a resourceVersion).
        """
        table = self._table(key)
        watcher = Watcher(self, key, flt, callback=callback, max_backlog=max_backlog)
        if since is not None:
            if since < table.compacted:
                raise gone(f"too old resource version: {since} ({table.compacted + 1})")
            replay = [e for e in _after(table.history, since)]
        else:
            replay = []
        for obj in initial or ():
            watcher.push(Event(ADDED, obj, self.revision, key))
        for event in replay:
            watcher.push(event)
        table.watchers.add(watcher)
        return watcher

    def _detach(self, watcher: Watcher) -> None:
        table = self._tables.get(watcher.key)
        if table is not None:
            table.watchers.discard(watcher)

    def watchers_by_resource(self) -> dict[ResourceKey, int]:
        """Open watchers per resource (for ``apiserver_longrunning_requests``)."""
        return {key: len(t.watchers) for key, t in self._tables.items() if t.watchers}

    def watcher_count(self) -> int:
        return sum(len(t.watchers) for t in self._tables.values())

    def close_watchers(self) -> None:
        for table in self._tables.values():
            for watcher in list(table.watchers):
                watcher.close()


def _after(history: deque[Event], since: int) -> Iterator[Event]:
    if not history or history[-1].revision <= since:
        return
    # History is ordered by revision; walk back from the end to the first newer event.
    start = len(history)
    for i in range(len(history) - 1, -1, -1):
        if history[i].revision <= since:
            break
        start = i
    for i in range(start, len(history)):
        yield history[i]


def _owner_uids(obj: dict[str, Any] | None) -> frozenset[str]:
    if obj is None:
        return frozenset()
    refs = obj["metadata"].get("ownerReferences")
    if not refs:
        return frozenset()
    return frozenset(r.get("uid", "") for r in refs if isinstance(r, dict))
