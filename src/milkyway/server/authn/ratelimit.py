"""Sign-in rate limiting: a token bucket per user name and per client address.

Password guessing is slowed per account and per source alike; a refused attempt is a 429
with ``Retry-After``, and it never reaches the identity backend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class LoginLimiter:
    def __init__(self, attempts: int = 10, per_seconds: float = 60.0) -> None:
        self.capacity = float(attempts)
        self.rate = attempts / per_seconds
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, *keys: str) -> float:
        """0 when an attempt may go ahead (and is counted), else seconds to wait."""
        now = time.monotonic()
        buckets = []
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            buckets.append(bucket)
        short = [b for b in buckets if b.tokens < 1]
        if short:
            return max((1 - b.tokens) / self.rate for b in short)
        for bucket in buckets:
            bucket.tokens -= 1
        if len(self._buckets) > 100_000:
            self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self.capacity}
        return 0.0
