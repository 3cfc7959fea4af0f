"""The one polling helper of the test suite: wait until a check holds, or fail saying what
was awaited. Timeouts are generous: the suite runs on loaded two-core machines."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any], *, within: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Call ``check`` (plain or async) until it returns something truthy, and return that;
    raise ``AssertionError`` naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within}s: {what or check}")
        await asyncio.sleep(interval)
