"""Backoff between attempts, deterministic so that the pure core stays pure.

Jitter is drawn from a hash of (run, step, failure count) instead of a random source:
replaying a run gives the same waits, and different steps still spread out.
"""

from __future__ import annotations

import hashlib

from milkyway.model.flow import Backoff


def backoff_delay(backoff: Backoff, failures: int, seed: str) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (``failures`` >= 1)."""
    exponent = max(0, failures - 1)
    try:
        base = backoff.duration * backoff.factor**exponent
    except OverflowError:
        base = backoff.max_duration
    base = min(backoff.max_duration, base)
    if backoff.jitter > 0:
        digest = hashlib.blake2b(f"{seed}#{failures}".encode(), digest_size=8).digest()
        fraction = int.from_bytes(digest, "big") / 2**64
        base *= 1 - backoff.jitter * fraction
    return base
