"""A FlowRun store that refuses the writes of runs whose shard this replica does not hold.

The resourceVersion precondition already stops an engine from overwriting what another
engine wrote. It cannot stop a replica that lost a shard (its Lease expired during a
pause or a network partition) from writing *first*, before the new holder claimed the
run. This store closes that gap on the writer's side: every write of a run's metadata,
spec or status asks the shard Leases, at the moment of the write, whether the run's
shard is held and was renewed within the renew deadline; if not the write is refused
with :class:`Fenced` (a :class:`~milkyway.flows.store.Conflict`, so the engine lets the
run go exactly as when another engine's write came first).

Creating a run is not fenced: schedules on the leader create runs of every shard, and
a created run is only driven by the holder of its shard. Locks are keyed by what they
protect, not by run, and are written with the same precondition as everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from milkyway.flows.store import Conflict, Store
from milkyway.model.flow import FlowRun


class Fenced(Conflict):
    """This replica does not hold the run's shard: it must not write the run."""


class FencedStore:
    """Wraps a store; ``holds(run)`` says whether this replica may write ``run``."""

    def __init__(self, store: Store, holds: Callable[[FlowRun], bool]) -> None:
        self._store = store
        self._holds = holds
        self.refused = 0
        """Writes refused because the shard was not held (a lost shard's driver writing)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _check(self, run: FlowRun) -> None:
        if not self._holds(run):
            self.refused += 1
            raise Fenced(f"flowrun {run.metadata.name!r}: its shard is not held by this replica")

    async def replace(self, run: FlowRun) -> FlowRun:
        self._check(run)
        return await self._store.replace(run)

    async def replace_status(self, run: FlowRun) -> FlowRun:
        self._check(run)
        return await self._store.replace_status(run)
