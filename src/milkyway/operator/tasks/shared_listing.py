"""Listings of a zone's pods shared by the tasks that ask at once, never older than the ask.

Every gate of a whole-zone wave counts every zone right before its restart, and every
restart then lists its zone: ten brokers per zone over three zones make forty listings of
the same pods within a few milliseconds, each served by the API server and decoded by
the operator, and the last of them is what holds the wave's last broker back. A gate's
count is sound only if its listing *began after* its own claim was written (whichever
gate reads last then sees the other's claim), so a listing already under way cannot be
handed to a newcomer: it may predate that claim.

:func:`fresh_listing` therefore gives a caller the first listing to begin after it asked:
one started at once when none of the same pods is under way, otherwise the one that
begins as soon as the current one ends, shared by every caller that asked meanwhile. A
reader never sees the world older than its question, exactly as with a listing of its
own, and any number of readers asking during one listing cost one more listing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightkube.resources.core_v1 import Pod

Listing = tuple[list[dict[str, Any]], str | None]
"""The pods (as dicts, shared by every reader: never modify them) and the listing's
resourceVersion (where a watch of the same pods may start)."""

_Key = tuple[int, str, tuple[tuple[str, str], ...]]


@dataclass
class _Group:
    """The listing under way for one set of pods, and the callers waiting for the next."""

    running: asyncio.Task[Listing] | None = None
    began: float = 0.0
    """When the running listing began (``time.monotonic``)."""
    next: asyncio.Future[asyncio.Task[Listing]] | None = None
    """Resolved with the next listing's task as it begins."""


_groups: dict[_Key, _Group] = {}


async def fresh_listing(
    client: Any, namespace: str, selector: Mapping[str, str], since: float | None = None
) -> Listing:
    """The pods of ``namespace`` matching ``selector`` as the API server lists them in a
    listing that began after this call (see the module's docstring), or with ``since``
    (a ``time.monotonic`` instant before now) one that began after that instant: a
    caller whose answer need only be as new as its own start (a restart checking what it
    is about to delete) then also joins a listing under way that began after it. A
    failure of that listing is raised to every caller sharing it."""
    key: _Key = (id(client), namespace, tuple(sorted(selector.items())))
    group = _groups.get(key)
    if group is None:
        group = _groups[key] = _Group()
    if group.running is None:
        task = _begin(key, group, client, namespace, dict(selector))
    elif since is not None and group.began >= since:
        task = group.running
    else:
        if group.next is None:
            group.next = asyncio.get_running_loop().create_future()
        task = await asyncio.shield(group.next)
    pods, version = await asyncio.shield(task)
    return list(pods), version


def listings_under_way() -> int:
    """Shared listings running now (zero once every caller has its answer)."""
    return sum(1 for group in _groups.values() if group.running is not None)


def _begin(
    key: _Key, group: _Group, client: Any, namespace: str, selector: dict[str, str]
) -> asyncio.Task[Listing]:
    group.began = time.monotonic()
    task = asyncio.create_task(_list(client, namespace, selector))
    group.running = task
    task.add_done_callback(lambda done: _ended(key, group, done, client, namespace, selector))
    return task


def _ended(
    key: _Key,
    group: _Group,
    done: asyncio.Task[Listing],
    client: Any,
    namespace: str,
    selector: dict[str, str],
) -> None:
    if not done.cancelled():
        # Retrieved here so a failure nobody waits for any more is not logged as lost.
        done.exception()
    waiters, group.next = group.next, None
    if waiters is None or waiters.done():
        group.running = None
        if _groups.get(key) is group:
            del _groups[key]
        return
    waiters.set_result(_begin(key, group, client, namespace, selector))


async def _list(client: Any, namespace: str, selector: dict[str, str]) -> Listing:
    listing = client.list(Pod, namespace=namespace, labels=selector)
    pods = [obj.to_dict() if hasattr(obj, "to_dict") else dict(obj) async for obj in listing]
    return pods, getattr(listing, "resourceVersion", None)


__all__ = ["Listing", "fresh_listing", "listings_under_way"]
