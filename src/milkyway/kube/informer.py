"""A list-then-watch cache of one resource on one cluster, as client-go's informers keep.

The operator is level-based: it never trusts an event's content, only "something about
this object changed". An :class:`Informer` keeps a local copy of the objects it watches
(for cheap reads of WIRI) and calls ``on_change(event_type, obj)`` for every change.
It survives what real clusters do: a watch that ends is resumed from the last
resourceVersion seen; ``410 Gone`` (history compacted) triggers a fresh list whose
differences from the cache are reported as synthetic ADDED/MODIFIED/DELETED events, so
nothing is missed and nothing is reported twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.core.resource import NamespacedResource
from lightkube.types import OnErrorAction, OnErrorResult

from milkyway.kube.reachability import ReachabilityLog

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]
"""(namespace, name); the namespace is empty for cluster-scoped objects."""


def _meta(obj: Any, field: str) -> Any:
    if isinstance(obj, dict):
        return (obj.get("metadata") or {}).get(field)
    return getattr(obj.metadata, field)


def object_key(obj: Any) -> ObjectKey:
    """The cache key of a lightkube object or of its plain-dict form."""
    return (_meta(obj, "namespace") or "", _meta(obj, "name"))


class Informer:
    """Watches ``resource`` (a lightkube resource class) and mirrors it in :attr:`cache`.

    ``transform`` turns each object into what is cached and handed to ``on_change`` (for
    example a plain dict without ``managedFields``): a consumer that keeps its own index
    of the objects then shares them with the cache instead of holding a second copy.

    :attr:`synced` is set once a listing is mirrored and cleared when the list or watch
    fails: while it retries, the cache may be missing changes (a cluster that stopped
    answering), and a reader that acts on what it sees must not take it for the present.
    ``on_synced`` is called each time a listing is mirrored again after a failure.
    """

    def __init__(
        self,
        client: AsyncClient,
        resource: Any,
        *,
        on_change: Callable[[str, Any], None],
        namespace: str | None = None,
        labels: dict[str, Any] | None = None,
        server_timeout: int = 300,
        retry_delay: float = 1.0,
        max_retry_delay: float = 5.0,
        transform: Callable[[Any], Any] | None = None,
        reachability: ReachabilityLog | None = None,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._on_synced = on_synced
        self._reachability = reachability
        """Where a connection failure is reported instead (once per change for the whole
        cluster, not once per informer)."""
        self._resource = resource
        self._on_change = on_change
        self._namespace = namespace
        self._labels = labels
        self._server_timeout = server_timeout
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._transform = transform or (lambda obj: obj)
        self.cache: dict[ObjectKey, Any] = {}
        self.synced = asyncio.Event()
        self.resource_version: str | None = None

    async def run(self) -> None:
        """List, then watch forever; cancel the task to stop.

        A failing list or watch (an unreachable cluster) is retried with a doubling delay
        capped at ``max_retry_delay``, logged once as a warning until it works again."""
        failures = 0
        while True:
            try:
                await self._relist()
                if failures and self._on_synced is not None:
                    self._on_synced()
                if self._reachability is not None:
                    self._reachability.succeeded()
                if failures:
                    log.info("informer for %s: listing works again", self._resource.__name__)
                failures = 0
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.synced.clear()
                name = self._resource.__name__
                if self._reachability is None or not self._reachability.failed(
                    exc, f"informer for {name}"
                ):
                    level = logging.WARNING if failures == 0 else logging.DEBUG
                    log.log(level, "informer for %s: %s; retrying", name, exc)
                delay = min(self._max_retry_delay, self._retry_delay * 2**failures)
                failures += 1
                await asyncio.sleep(delay)

    def _scope(self) -> str | None:
        """The namespace to list/watch: the one given, else all (``*``) for namespaced
        resources, and none for cluster-scoped ones (``*`` is refused for those)."""
        if self._namespace is not None:
            return self._namespace
        return "*" if issubclass(self._resource, NamespacedResource) else None

    async def _relist(self) -> None:
        listing = self._client.list(
            self._resource,
            namespace=self._scope(),
            labels=self._labels,
        )
        fresh: dict[ObjectKey, Any] = {}
        async for obj in listing:
            fresh[object_key(obj)] = self._transform(obj)
        self.resource_version = listing.resourceVersion
        previous = dict(self.cache)
        # Updated in place: readers may hold a reference to the cache.
        self.cache.clear()
        self.cache.update(fresh)
        for key, obj in fresh.items():
            old = previous.get(key)
            if old is None:
                self._on_change("ADDED", obj)
            elif _meta(old, "resourceVersion") != _meta(obj, "resourceVersion"):
                self._on_change("MODIFIED", obj)
        for key, obj in previous.items():
            if key not in fresh:
                self._on_change("DELETED", obj)
        self.synced.set()

    async def _watch(self) -> None:
        """Watch from the last version; returns (to relist) only on ``410 Gone``."""
        failure: list[Exception] = []

        def stop_on_error(exc: Exception, _attempt: int) -> OnErrorResult:
            failure.append(exc)
            return OnErrorResult(OnErrorAction.STOP)

        while True:
            failure.clear()
            stream = self._client.watch(
                self._resource,
                namespace=self._scope(),
                labels=self._labels,
                resource_version=self.resource_version,
                server_timeout=self._server_timeout,
                on_error=stop_on_error,
            )
            async for event_type, raw in stream:
                self.resource_version = raw.metadata.resourceVersion
                obj = self._transform(raw)
                key = object_key(obj)
                if event_type == "DELETED":
                    self.cache.pop(key, None)
                else:
                    self.cache[key] = obj
                self._on_change(event_type, obj)
            if failure:
                exc = failure[0]
                if isinstance(exc, ApiError) and exc.status.code == 410:
                    return
                raise exc
