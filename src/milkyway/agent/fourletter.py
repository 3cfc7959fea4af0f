"""ZooKeeper's four-letter words over TCP, and the parsing of their answers."""

from __future__ import annotations

import asyncio
import contextlib


async def send_word(host: str, port: int, word: str, limit_seconds: float) -> str:
    """Send ``word`` and read the whole answer (the server closes the connection)."""
    async with asyncio.timeout(limit_seconds):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(word.encode())
            await writer.drain()
            return (await reader.read(1 << 20)).decode(errors="replace")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def parse_mntr(text: str) -> dict[str, str]:
    """``mntr`` answers ``key<TAB>value`` lines."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_srvr(text: str) -> dict[str, str]:
    """``srvr`` answers ``Key: value`` lines (``Mode: follower``, ``Latency min/avg/max``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values
