"""Whether a process's event loop still turns, and how late it turns.

The metrics endpoint runs in its own thread, so it would answer while the loop that does
the work is stuck (a blocking call, a deadlock). A task on the loop stamps the time every
``interval``; ``/healthz`` fails once the stamp is older than ``stale_after`` seconds, and
the liveness probe restarts the container.

The same task measures the loop's lag: how much later than asked each of its sleeps
ended. Everything on the loop (a reaction to a change included) waits that long behind
whatever held it: a long computation, a garbage collection, a burst of watch events.
Each lag goes to the ``milkyway_event_loop_lag_seconds`` histogram, so a slow reaction
can be matched with the loop being busy at that time (the difference of the histogram's
sum and buckets over the reaction), and a dashboard shows the loop's health over time. A
short interval sees short stalls too (a stall shorter than the interval that falls within
one sleep would go unseen); one turn of the loop per 50 ms costs nothing measurable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

from milkyway.telemetry import REGISTRY

LAG_INTERVAL = 0.05
"""Seconds between two turns of the watchdog's task: stalls longer than this are seen."""

EVENT_LOOP_LAG = Histogram(
    "milkyway_event_loop_lag_seconds",
    "How much later than asked the event loop woke a sleeping task (everything on the "
    "loop waited as long).",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class LoopWatchdog:
    def __init__(
        self,
        stale_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        lag: Histogram | None = EVENT_LOOP_LAG,
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._lag = lag
        self.last_tick = clock()
        self._due: float | None = None
        """When the running task's next turn is due (``None`` before its first)."""

    async def run(self, interval: float = LAG_INTERVAL) -> None:
        while True:
            self.tick(interval)
            await asyncio.sleep(interval)

    def tick(self, interval: float) -> None:
        """Stamp the time and record how late this turn came after the previous one."""
        now = self._clock()
        if self._lag is not None and self._due is not None:
            self._lag.observe(max(0.0, now - self._due))
        self.last_tick = now
        self._due = now + interval

    def healthy(self) -> bool:
        return self._clock() - self.last_tick < self.stale_after
