"""The periodic resync, per Application: each one is looked at again ``period`` after its
last reconcile (with a little jitter), not all of them at once.

A resync is the level-based safety net (a missed event, a time-based condition nobody
requeued for), so an Application reconciled for any other reason within the period
needs none: its deadline moves with every reconcile. The jitter keeps Applications
reconciled in one burst (a start-up, a Cluster change) from coming due in the same
instant a period later. Due keys go to the work queue as background work, behind every
key queued because something changed.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable, Hashable, Iterable
from time import monotonic
from typing import Protocol


class ResyncQueue(Protocol):
    def add_resync(self, key: Hashable) -> None: ...


class ResyncSchedule:
    """When each key is next due for a resync; see the module docstring."""

    def __init__(
        self,
        period: float,
        *,
        jitter: float = 0.1,
        clock: Callable[[], float] = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if period <= 0:
            raise ValueError(f"resync period must be positive, got {period}")
        if not 0 <= jitter < 1:
            raise ValueError(f"resync jitter must be in [0, 1), got {jitter}")
        self.period = period
        self.jitter = jitter
        self._clock = clock
        self._rng = rng or random.Random()
        self._due: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._due)

    def due_at(self, key: Hashable) -> float | None:
        return self._due.get(key)

    def reconciled(self, key: Hashable) -> None:
        """``key`` was just reconciled: its next resync is a period (plus jitter) away."""
        self._schedule(key, self.period * (1 + self.jitter * self._rng.random()))

    def track(self, keys: Iterable[Hashable]) -> None:
        """Schedule every key of ``keys`` not scheduled yet, within the coming period:
        the safety net for a key whose reconciles all failed or were never made."""
        for key in keys:
            if key not in self._due:
                self._schedule(key, self.period * self._rng.random())

    def forget(self, key: Hashable) -> None:
        """``key`` is gone (its Application was deleted): never resync it again."""
        self._due.pop(key, None)

    def pop_due(self) -> list[Hashable]:
        """The keys whose resync is due now, each rescheduled a period later (in case its
        reconcile never happens, e.g. while the queue is shut down)."""
        now = self._clock()
        due: list[Hashable] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                due.append(key)
        for key in due:
            self._schedule(key, self.period)
        return due

    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest scheduled resync, if any."""
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def run(self, queue: ResyncQueue, keys: Callable[[], Iterable[Hashable]]) -> None:
        """Queue due keys as background work until cancelled; ``keys`` (every current
        key) is swept once a period for keys not scheduled yet."""
        swept = float("-inf")
        while True:
            now = self._clock()
            if now - swept >= self.period:
                self.track(keys())
                swept = now
            for key in self.pop_due():
                queue.add_resync(key)
            deadline = self.next_deadline()
            wake = swept + self.period if deadline is None else min(deadline, swept + self.period)
            await asyncio.sleep(max(0.0, wake - self._clock()))

    def _schedule(self, key: Hashable, delay: float) -> None:
        when = self._clock() + delay
        self._due[key] = when
        self._sequence += 1
        heapq.heappush(self._heap, (when, self._sequence, key))
        if len(self._heap) > 4 * len(self._due) + 64:
            # Every reconcile leaves its old deadline behind: drop them now and then.
            self._heap = [(w, n, k) for w, n, k in self._heap if self._due.get(k) == w]
            heapq.heapify(self._heap)
