"""Give the C allocator's free memory back to the system, now and then.

Provisioning is bursty: listings of thousands of objects, FlowRun documents decoded at
every step, renderings. What they allocate outside Python's small-object allocator
(buffers, large strings, big dicts and lists) comes from the C library's heap, and glibc
keeps what is freed there for reuse instead of returning it: after the burst the process
holds on to its peak. ``malloc_trim`` hands the free pages back. Elsewhere than glibc
there is nothing to call, and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

INTERVAL = 60.0
"""Seconds between two trims: one takes milliseconds, and memory freed by a burst need
not wait long to be returned."""


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def trim() -> bool:
    """Return the C heap's free pages to the system; False where there is no
    ``malloc_trim`` (not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


async def trim_periodically(interval: float = INTERVAL) -> None:
    if not trim():
        log.debug("no malloc_trim in this C library: freed memory stays with the process")
        return
    while True:
        await asyncio.sleep(interval)
        trim()
