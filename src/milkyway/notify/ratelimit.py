"""A token bucket per subscription, so one noisy Application cannot flood a mailbox or
get a Slack webhook throttled for everybody."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def delay(self, key: str, count: int, per: float) -> float:
        """Take a token for ``key`` now if there is one (0.0), else the seconds to wait."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(count), now))
        tokens = min(float(count), tokens + (now - last) * count / per)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) * per / count

    async def acquire(
        self, key: str, count: int, per: float, on_wait: Callable[[float], None]
    ) -> None:
        while (wait := self.delay(key, count, per)) > 0:
            on_wait(wait)
            await asyncio.sleep(wait)
