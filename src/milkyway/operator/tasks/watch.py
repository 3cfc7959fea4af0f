"""Event-driven waits: a task waiting for pods lists them, then sleeps until a watch says
one of them changed, instead of polling on a timer.

A rolling restart waits once per wave (for a restarted member to be Ready again, for room
in the disruption budget, for a zone to settle); each poll interval spent there is paid
again on every wave. :class:`PodWatch` keeps the wait level-based: the watch is opened at
a listing's resourceVersion, so nothing between the two is missed, and it mirrors the
zone's pods from that listing on, as an informer does (:meth:`PodWatch.pods`); a reader
that must see the API server's own answer (the disruption gate) lists afresh
(:meth:`PodWatch.list`). Without a watch (a client that has none, a watch that failed, too
many open on one cluster) the wait falls back to the task's poll interval and every read
is a listing, which is what the tasks did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from lightkube.resources.core_v1 import Pod
from lightkube.types import OnErrorAction, OnErrorResult

from milkyway.flows.tasks import TaskContext
from milkyway.operator.tasks.common import Clock, call, to_dict

log = logging.getLogger(__name__)

MAX_WATCHES_PER_CLIENT = 32
"""Watches the waiting tasks may hold open on one cluster at once. Each holds one of the
client's pooled connections (100 by default) for as long as it waits; past this many,
further waiters poll, so many flows waiting at once never starve the client's other
requests."""
RESYNC = 2.0
"""Longest sleep between two listings while a watch is open: a safety net only, the watch
wakes the waiter as soon as anything changes."""

_open: dict[int, int] = {}
"""Open watches per client (by ``id``), for :data:`MAX_WATCHES_PER_CLIENT`."""

_ZoneKey = tuple[str, str, tuple[tuple[str, str], ...]]


def open_watches(client: Any) -> int:
    """Watches the waiting tasks hold open on ``client`` now."""
    return _open.get(id(client), 0)


class PodWatch:
    """The pods of one or more zones, listed on demand; :meth:`wait` returns once any of
    them changed since it was listed (or the fallback interval passed).

    Use as an async context manager: leaving it closes the watches.
    """

    def __init__(self, ctx: TaskContext, clock: Clock | None = None) -> None:
        self._ctx = ctx
        self._clock = clock
        self._changed = asyncio.Event()
        self._watches: dict[_ZoneKey, asyncio.Task[None]] = {}
        self._failed: set[_ZoneKey] = set()
        self._mirrors: dict[_ZoneKey, dict[str, dict[str, Any]]] = {}
        self._listed: dict[_ZoneKey, tuple[Any, str | None, list[dict[str, Any]]]] = {}
        """Per zone: client, resourceVersion and pods of its last listing, where a watch
        opened by :meth:`wait` starts (a task that never waits opens none)."""

    async def __aenter__(self) -> PodWatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def watching(self) -> bool:
        """Every zone listed so far has a watch open (they open at the first wait)."""
        return bool(self._listed) and all(
            key in self._watches and not self._watches[key].done() for key in self._listed
        )

    async def pods(
        self, cluster: str, namespace: str, selector: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The zone's pods as the watch last reported them (the first listing plus every
        change since, in order); a fresh listing while the zone is not watched."""
        key = _key(cluster, namespace, selector)
        running = self._watches.get(key)
        if running is None or running.done():
            return await self.list(cluster, namespace, selector)
        return list(self._mirrors[key].values())

    async def list(
        self, cluster: str, namespace: str, selector: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The zone's pods as the API server lists them now; from here on, any change to
        them ends :meth:`wait`."""
        client = self._ctx.client(cluster)
        key = _key(cluster, namespace, selector)

        async def read() -> tuple[list[dict[str, Any]], str | None]:
            listing = client.list(Pod, namespace=namespace, labels=dict(selector))
            pods = [to_dict(obj) async for obj in listing]
            return pods, getattr(listing, "resourceVersion", None)

        pods, version = await call(self._ctx, cluster, "list Pod", read, self._clock)
        self._listed[key] = (client, version, pods)
        return pods

    async def wait(self, interval: float) -> bool:
        """Until a listed zone changes (True); at most ``interval`` while any zone is
        unwatched, at most :data:`RESYNC` (or ``interval`` if longer) while all are
        watched (False: nothing was reported, list afresh). Opens the watch of each zone
        listed but not watched yet, from its last listing."""
        for key, (client, version, pods) in self._listed.items():
            self._start(key, client, version, pods)
        timeout = max(interval, RESYNC) if self.watching else interval
        changed = True
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
            # that arrives as the event is set, and an abandoned attempt would keep waiting.
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            changed = False
        self._changed.clear()
        return changed

    async def close(self) -> None:
        watches = list(self._watches.values())
        self._watches.clear()
        for task in watches:
            task.cancel()
        for task in watches:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start(
        self, key: _ZoneKey, client: Any, version: str | None, pods: list[dict[str, Any]]
    ) -> None:
        running = self._watches.get(key)
        if running is not None and not running.done():
            return
        if key in self._failed or not hasattr(client, "watch"):
            return
        if open_watches(client) >= MAX_WATCHES_PER_CLIENT:
            return
        _open[id(client)] = open_watches(client) + 1
        self._mirrors[key] = {p["metadata"]["name"]: p for p in pods}
        task = asyncio.create_task(self._follow(key, client, version))
        # A callback, not ``finally``: a task cancelled before it ever ran skips its body.
        task.add_done_callback(lambda _: _release(client))
        self._watches[key] = task

    async def _follow(self, key: _ZoneKey, client: Any, version: str | None) -> None:
        cluster, namespace, selector = key
        failure: list[Exception] = []

        def stop(exc: Exception, _attempt: int) -> OnErrorResult:
            failure.append(exc)
            return OnErrorResult(OnErrorAction.STOP)

        mirror = self._mirrors[key]
        try:
            async for kind, obj in client.watch(
                Pod,
                namespace=namespace,
                labels=dict(selector),
                resource_version=version,
                on_error=stop,
            ):
                pod = to_dict(obj)
                name = pod["metadata"]["name"]
                if kind == "DELETED":
                    mirror.pop(name, None)
                else:
                    mirror[name] = pod
                self._changed.set()
            if failure:
                raise failure[0]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Polling takes over for this zone; the wait stays correct, only slower.
            log.debug("watch of pods in %s/%s ended: %s; polling", cluster, namespace, exc)
            self._failed.add(key)
        finally:
            # Whoever waits lists again now rather than after a full interval.
            self._changed.set()


def _release(client: Any) -> None:
    count = open_watches(client) - 1
    if count > 0:
        _open[id(client)] = count
    else:
        _open.pop(id(client), None)


def _key(cluster: str, namespace: str, selector: Mapping[str, str]) -> _ZoneKey:
    return (cluster, namespace, tuple(sorted(selector.items())))


__all__ = ["MAX_WATCHES_PER_CLIENT", "RESYNC", "PodWatch", "open_watches"]
