"""lightkube clients that act as another user (Kubernetes impersonation).

A front end that serves many users holds one credential for the management cluster and
sends each request with ``Impersonate-User`` and one ``Impersonate-Group`` per group, so
the API server's RBAC judges the user, not the front end. The front end's own account
needs the ``impersonate`` verb on users and groups, nothing else of the users' rights.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightkube import AsyncClient

from milkyway.kube.clients import client_from_kubeconfig

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"


def impersonate(client: AsyncClient, user: str, groups: Iterable[str]) -> AsyncClient:
    """Make every request of ``client`` act as ``user`` in ``groups``."""
    groups = list(groups)
    for value in (user, *groups):
        if not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"{value!r} cannot be sent as an impersonated user or group name")

    async def add_headers(request: Any) -> None:
        headers = request.headers
        for key in [k for k in headers if k.lower().startswith("impersonate-")]:
            del headers[key]
        headers[IMPERSONATE_USER] = user
        for group in groups:
            headers._list.append(  # several values of one header, as Kubernetes expects
                (IMPERSONATE_GROUP.encode(), IMPERSONATE_GROUP.lower().encode(), group.encode())
            )

    transport_client = client._client._client  # the httpx client lightkube sends with
    transport_client.event_hooks["request"].append(add_headers)
    return client


class ImpersonatingClients:
    """One client per (user, groups), kept in a bounded least-recently-used pool so
    repeated requests of one user reuse a warm connection. A client pushed out of the
    pool is closed ``retire_after`` seconds later, once requests still using it are done
    (a live watch on it ends then, and its reader reconnects)."""

    def __init__(
        self,
        kubeconfig: str | Path | Mapping[str, Any],
        context: str | None = None,
        *,
        size: int = 256,
        timeout: float = 30.0,
        retire_after: float = 300.0,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._size = size
        self._timeout = timeout
        self._retire_after = retire_after
        self._pool: OrderedDict[tuple[str, tuple[str, ...]], AsyncClient] = OrderedDict()
        self._own: AsyncClient | None = None
        self._retired: set[AsyncClient] = set()
        self._closing: set[asyncio.Task[None]] = set()

    def own(self) -> AsyncClient:
        """A client with the front end's own credentials (for what it does for itself)."""
        if self._own is None:
            self._own = client_from_kubeconfig(
                self._kubeconfig, self._context, timeout=self._timeout
            )
        return self._own

    def as_user(self, user: str, groups: Iterable[str]) -> AsyncClient:
        key = (user, tuple(groups))
        client = self._pool.get(key)
        if client is not None:
            self._pool.move_to_end(key)
            return client
        client = impersonate(
            client_from_kubeconfig(self._kubeconfig, self._context, timeout=self._timeout),
            user,
            key[1],
        )
        self._pool[key] = client
        while len(self._pool) > self._size:
            _, old = self._pool.popitem(last=False)
            self._retire(old)
        return client

    def _retire(self, client: AsyncClient) -> None:
        self._retired.add(client)

        async def close_later() -> None:
            await asyncio.sleep(self._retire_after)
            self._retired.discard(client)
            await client.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        clients = [*self._pool.values(), *self._retired]
        if self._own is not None:
            clients.append(self._own)
        for client in clients:
            await client.close()
        self._pool.clear()
        self._retired.clear()
        self._own = None
