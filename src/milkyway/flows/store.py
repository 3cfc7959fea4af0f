"""Where runs live: one small interface, an in-memory store, and its contract.

The contract every store keeps:

* ``replace`` (metadata and spec) and ``replace_status`` succeed only if the run's
  ``metadata.resourceVersion`` is the one stored (optimistic concurrency, as the
  Kubernetes API server does) and return the run with its new version; otherwise they
  raise :class:`Conflict` and store nothing. This is the fencing token that stops two
  engines from both advancing a run.
* ``acquire``/``release`` implement counted locks by key (mutexes are limit 1), atomic
  across every engine that shares the store. ``holders`` lists who holds a key, so an
  engine can release slots still held by runs that finished (or were deleted) without
  releasing them, e.g. because their engine stopped between the two writes.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
from typing import Protocol

from milkyway.flows.core import clone
from milkyway.model.flow import DONE_LABEL, FlowRun


class StoreError(Exception):
    pass


class Conflict(StoreError):
    """The object changed since it was read; re-read and decide again."""


class NotFound(StoreError, KeyError):
    pass


class AlreadyExists(StoreError):
    pass


class Store(Protocol):
    """Persistence of FlowRuns for the engine, the CLI and the API."""

    async def create(self, run: FlowRun) -> FlowRun: ...

    async def get(self, name: str) -> FlowRun: ...

    async def list(self) -> list[FlowRun]: ...

    async def list_active(self) -> builtins.list[FlowRun]:
        """The runs not labelled done (``DONE_LABEL``): what an engine may have to drive."""
        ...

    async def replace(self, run: FlowRun) -> FlowRun:
        """Write metadata and spec if the resourceVersion is current; else raise Conflict."""
        ...

    async def replace_status(self, run: FlowRun) -> FlowRun:
        """Write the status if the resourceVersion is current; else raise Conflict."""
        ...

    async def record_event(self, run: FlowRun, reason: str, message: str, warning: bool) -> None:
        """Attach a Kubernetes-style Event to the run (best effort)."""
        ...

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        """Take one of ``limit`` slots of ``key`` for ``holder``; True if held (idempotent)."""
        ...

    async def release(self, key: str, holder: str) -> None: ...

    async def holders(self, key: str) -> builtins.list[str]:
        """Who holds ``key`` now (run names), in acquisition order."""
        ...


class MemoryStore:
    """A store in this process's memory: for tests, benchmarks and ``dry-run``.

    Runs are kept as the objects written (the engine never mutates a run it wrote), so a
    write costs no serialisation.
    """

    wants_progress = False
    """Progress is computed on demand (``engine.progress``) instead of on every write."""

    def __init__(self) -> None:
        self._runs: dict[str, FlowRun] = {}
        self._versions = itertools.count(1)
        self._locks: dict[str, list[str]] = {}
        self._mutex = asyncio.Lock()
        self.events: list[tuple[str, str, str, bool]] = []
        self.writes = 0

    async def create(self, run: FlowRun) -> FlowRun:
        name = run.metadata.name
        if name in self._runs:
            raise AlreadyExists(f"flowrun {name!r} already exists")
        return self._store(run)

    async def get(self, name: str) -> FlowRun:
        try:
            return self._runs[name]
        except KeyError:
            raise NotFound(f"flowrun {name!r} not found") from None

    async def list(self) -> list[FlowRun]:
        return list(self._runs.values())

    async def list_active(self) -> builtins.list[FlowRun]:
        return [r for r in self._runs.values() if r.metadata.labels.get(DONE_LABEL) != "true"]

    async def replace(self, run: FlowRun) -> FlowRun:
        current = self._current(run)
        return self._store(clone(run, status=current.status))

    async def replace_status(self, run: FlowRun) -> FlowRun:
        current = self._current(run)
        return self._store(clone(current, status=run.status, metadata=run.metadata))

    def _current(self, run: FlowRun) -> FlowRun:
        name = run.metadata.name
        current = self._runs.get(name)
        if current is None:
            raise NotFound(f"flowrun {name!r} not found")
        if current.metadata.resource_version != run.metadata.resource_version:
            raise Conflict(
                f"flowrun {name!r} changed: resourceVersion {run.metadata.resource_version} "
                f"is stale (now {current.metadata.resource_version})"
            )
        return current

    def _store(self, run: FlowRun) -> FlowRun:
        metadata = clone(run.metadata, resource_version=str(next(self._versions)))
        stored = clone(run, metadata=metadata)
        self._runs[run.metadata.name] = stored
        self.writes += 1
        return stored

    async def record_event(self, run: FlowRun, reason: str, message: str, warning: bool) -> None:
        self.events.append((run.metadata.name, reason, message, warning))

    async def acquire(self, key: str, holder: str, limit: int) -> bool:
        async with self._mutex:
            holders = self._locks.setdefault(key, [])
            if holder in holders:
                return True
            if len(holders) >= limit:
                return False
            holders.append(holder)
            return True

    async def release(self, key: str, holder: str) -> None:
        async with self._mutex:
            holders = self._locks.get(key, [])
            if holder in holders:
                holders.remove(holder)

    async def holders(self, key: str) -> builtins.list[str]:
        async with self._mutex:
            return list(self._locks.get(key, []))
