"""Whether a process's event loop still turns: the answer of its ``/healthz``.

The metrics endpoint runs in its own thread, so it would answer while the loop that does
the work is stuck (a blocking call, a deadlock). A task on the loop stamps the time every
second; ``/healthz`` fails once the stamp is older than ``stale_after`` seconds, and the
liveness probe restarts the container.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class LoopWatchdog:
    def __init__(
        self, stale_after: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self.last_tick = clock()

    async def run(self, interval: float = 1.0) -> None:
        while True:
            self.last_tick = self._clock()
            await asyncio.sleep(interval)

    def healthy(self) -> bool:
        return self._clock() - self.last_tick < self.stale_after
