"""Informers and the work queue: the runtime's O(changed objects) machinery.

An :class:`Informer` mirrors one resource of the cluster from the API's synchronous
watch callbacks (``ClusterAPI.subscribe``), so its cache is never behind the store, and
keeps secondary indexes (by owner, by node, by claim, by namespace) up to date per event.
Controllers react to an event by enqueueing the keys it affects; a reconcile then reads
only the indexed objects it needs. Nothing ever relists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from milkyway.sim.controllers.objects import Obj, key_of

Key = tuple[str, str]
IndexFn = Callable[[Obj], Iterable[Hashable]]
Handler = Callable[[str, Obj | None, Obj | None], None]
"""``handler(event_type, old, new)``; ``new`` is None for a deletion."""


class Informer:
    """A read-only mirror of one resource with named secondary indexes."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.objects: dict[Key, Obj] = {}
        self._index_fns: dict[str, IndexFn] = {}
        self._indexes: dict[str, dict[Hashable, dict[Key, None]]] = {}
        self._handlers: list[Handler] = []

    def add_index(self, name: str, fn: IndexFn) -> None:
        self._index_fns[name] = fn
        index: dict[Hashable, dict[Key, None]] = {}
        for key, obj in self.objects.items():
            for value in fn(obj):
                index.setdefault(value, {})[key] = None
        self._indexes[name] = index

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.objects.get((namespace, name))

    def by_index(self, name: str, value: Hashable) -> list[Obj]:
        keys = self._indexes[name].get(value)
        if not keys:
            return []
        return [self.objects[k] for k in keys]

    def index_values(self, name: str) -> list[Hashable]:
        return list(self._indexes[name])

    def keys_for(self, name: str, obj: Obj) -> list[Hashable]:
        """The values index ``name`` files ``obj`` under (also for objects not cached)."""
        return list(self._index_fns[name](obj))

    def apply(self, event_type: str, obj: Obj) -> None:
        """Fold one watch event in, then tell the handlers what changed."""
        key = key_of(obj)
        old = self.objects.get(key)
        new: Obj | None
        if event_type == "DELETED":
            self.objects.pop(key, None)
            new = None
        else:
            self.objects[key] = obj
            new = obj
        for name, fn in self._index_fns.items():
            index = self._indexes[name]
            before = set(fn(old)) if old is not None else set()
            after = set(fn(new)) if new is not None else set()
            for value in before - after:
                bucket = index.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del index[value]
            for value in after - before:
                index.setdefault(value, {})[key] = None
        for handler in self._handlers:
            handler(event_type, old, new)

    def on_event(self, event: Any) -> None:
        self.apply(event.type, event.object)


class WorkQueue:
    """A de-duplicating FIFO of ``(controller, key)`` items with delayed re-adds."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, Hashable], None] = {}
        self._wake = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    def add(self, controller: str, key: Hashable) -> None:
        self._items[(controller, key)] = None
        self._wake.set()

    def add_after(self, controller: str, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(controller, key)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self.add(controller, key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def pop(self) -> tuple[str, Hashable] | None:
        if not self._items:
            self._wake.clear()
            return None
        item = next(iter(self._items))
        del self._items[item]
        return item

    def __len__(self) -> int:
        return len(self._items)

    async def wait(self) -> None:
        await self._wake.wait()

    def cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
