"""A de-duplicating, rate-limited work queue of reconcile keys, as controller-runtime has.

Reconciliation is level-based: a key (one Application) says only "look at this again".
So the queue holds each key at most once, never hands the same key to two workers at
once, and if a key is added while it is being processed it is handed out again after
``done`` — changes that arrive during a reconcile are coalesced into the next one.
Failures are retried with a per-key exponential backoff that ``forget`` resets.

Keys come at two priorities. A key added because something changed (:meth:`add`) is
urgent; a key added by the periodic resync (:meth:`add_resync`) is background work and
is handed out only when no urgent key waits. With thousands of Applications the resync
is a steady stream of keys: a change must not wait behind it. A background key that
becomes urgent moves ahead, and a resync of a key being reconciled right now is
dropped, since that reconcile already looks at everything afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from time import monotonic

from milkyway.operator import metrics


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and drained."""


@dataclass
class ExponentialBackoff:
    """Per-key delay ``base * 2**failures``, capped: the controller-runtime default shape."""

    base: float = 0.005
    cap: float = 300.0
    _failures: dict[Hashable, int] = field(default_factory=dict)

    def when(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return min(self.cap, self.base * (2**failures))

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


class WorkQueue:
    """Keys waiting to be reconciled; see the module docstring for the contract."""

    def __init__(
        self,
        backoff: ExponentialBackoff | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._backoff = backoff or ExponentialBackoff()
        self._clock = clock
        self._urgent: deque[Hashable] = deque()
        self._background: deque[Hashable] = deque()
        self._dirty: dict[Hashable, bool] = {}
        """Keys waiting to be handed out, each with whether it is urgent. A background
        key promoted to urgent leaves a stale entry in ``_background``, skipped later."""
        self._processing: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self._shutting_down = False
        self._queued_at: dict[Hashable, float] = {}
        """When each waiting key was first queued (``milkyway_workqueue_latency_seconds``)."""

    def __len__(self) -> int:
        return sum(1 for key in self._dirty if key not in self._processing)

    def waiting(self, key: Hashable) -> str | None:
        """``"urgent"`` or ``"background"`` if ``key`` waits to be handed out, else None."""
        urgent = self._dirty.get(key)
        if urgent is None or key in self._processing:
            return None
        return "urgent" if urgent else "background"

    def add(self, key: Hashable) -> None:
        """Ask for ``key`` to be reconciled because something changed (urgent)."""
        if self._shutting_down or self._dirty.get(key):
            return
        self._dirty[key] = True
        self._queued_at.setdefault(key, self._clock())
        if key not in self._processing:
            self._urgent.append(key)
            self._wakeup.set()

    def add_resync(self, key: Hashable) -> None:
        """Ask for ``key`` to be reconciled when no urgent key waits (periodic resync);
        a no-op if it already waits or is being reconciled."""
        if self._shutting_down or key in self._dirty or key in self._processing:
            return
        self._dirty[key] = False
        self._queued_at.setdefault(key, self._clock())
        self._background.append(key)
        self._wakeup.set()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add ``key`` (urgent) once ``delay`` seconds have passed (a requeue-after)."""
        if delay <= 0:
            self.add(key)
            return
        heapq.heappush(self._delayed, (self._clock() + delay, next(self._sequence), key))
        self._wakeup.set()

    def add_rate_limited(self, key: Hashable) -> float:
        """Re-add ``key`` after its backoff delay (a failed reconcile); returns the delay."""
        delay = self._backoff.when(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """Reset ``key``'s backoff after a successful reconcile."""
        self._backoff.forget(key)

    def failures(self, key: Hashable) -> int:
        return self._backoff.failures(key)

    def done(self, key: Hashable) -> None:
        """Mark ``key`` processed; if it was added meanwhile, it is queued again."""
        self._processing.discard(key)
        urgent = self._dirty.get(key)
        if urgent is not None:
            (self._urgent if urgent else self._background).append(key)
            self._wakeup.set()

    async def get(self) -> Hashable:
        """Wait for the next key and mark it processing (call :meth:`done` afterwards):
        the oldest urgent key, else the oldest background key."""
        while True:
            self._promote_due()
            key = self._next()
            if key is not None:
                del self._dirty[key]
                self._processing.add(key)
                queued_at = self._queued_at.pop(key, None)
                if queued_at is not None:
                    metrics.QUEUE_LATENCY.observe(max(0.0, self._clock() - queued_at))
                return key
            if self._shutting_down:
                raise ShutDown
            self._wakeup.clear()
            timeout = None
            if self._delayed:
                timeout = max(0.0, self._delayed[0][0] - self._clock())
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that arrives as the event is set, and a stopping worker would keep going.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    def shut_down(self) -> None:
        """Stop accepting keys; :meth:`get` raises :class:`ShutDown` once drained."""
        self._shutting_down = True
        self._delayed.clear()
        self._wakeup.set()

    def _next(self) -> Hashable | None:
        if self._urgent:
            return self._urgent.popleft()
        while self._background:
            key = self._background.popleft()
            if self._dirty.get(key) is False and key not in self._processing:
                return key
        return None

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self.add(key)
