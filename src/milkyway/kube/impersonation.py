"""lightkube clients that act as another user (Kubernetes impersonation).

A front end that serves many users holds one credential for the management cluster and
sends each request with ``Impersonate-User`` and one ``Impersonate-Group`` per group, so
the API server's RBAC judges the user, not the front end. The front end's own account
needs the ``impersonate`` verb on users and groups, nothing else of the users' rights.
"""

from __future__ import annotations

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
    repeated requests of one user reuse a warm connection."""

    def __init__(
        self,
        kubeconfig: str | Path | Mapping[str, Any],
        context: str | None = None,
        *,
        size: int = 256,
        timeout: float = 30.0,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self._size = size
        self._timeout = timeout
        self._pool: OrderedDict[tuple[str, tuple[str, ...]], AsyncClient] = OrderedDict()
        self._retired: list[AsyncClient] = []

    def own(self) -> AsyncClient:
        """A client with the front end's own credentials (for what it does for itself)."""
        key = ("", ())
        client = self._pool.get(key)
        if client is None:
            client = client_from_kubeconfig(self._kubeconfig, self._context, timeout=self._timeout)
            self._pool[key] = client
        return client

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
            self._retired.append(old)
        return client

    async def close(self) -> None:
        for client in [*self._pool.values(), *self._retired]:
            await client.close()
        self._pool.clear()
        self._retired.clear()
