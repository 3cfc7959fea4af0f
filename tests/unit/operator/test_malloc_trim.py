"""Freed C-heap memory is handed back to the system periodically (glibc's malloc_trim)."""

from __future__ import annotations

import asyncio
import platform
from typing import Any

import pytest

from milkyway.operator import malloc_trim


def test_trim_is_available_on_glibc() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.fail(f"this test expects glibc (CI's Debian); found {platform.libc_ver()}")
    assert malloc_trim.trim() is True


async def test_trims_repeat_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    thrice = asyncio.Event()

    def counting() -> bool:
        calls.append(1)
        if len(calls) >= 3:
            thrice.set()
        return True

    monkeypatch.setattr(malloc_trim, "trim", counting)
    task = asyncio.create_task(malloc_trim.trim_periodically(0.01))
    try:
        await asyncio.wait_for(thrice.wait(), 30)
    finally:
        task.cancel()
    assert len(calls) >= 3


async def test_without_malloc_trim_nothing_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def missing() -> bool:
        calls.append(1)
        return False

    monkeypatch.setattr(malloc_trim, "trim", missing)
    await asyncio.wait_for(malloc_trim.trim_periodically(0.01), 5)
    assert calls == [1]
