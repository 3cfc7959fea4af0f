"""``GET /version`` of a cluster: the cheapest request that proves the API server answers.

lightkube has no call for the ``/version`` endpoint, so this goes through the HTTP
client a lightkube client already holds (same TLS, token and base URL), with a short
timeout of its own so a dead cluster is noticed quickly.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient

from milkyway.kube.errors import TRANSPORT_ERRORS


class Unreachable(Exception):
    """The API server did not answer ``/version`` successfully."""


async def server_version(client: AsyncClient, within: float = 5.0) -> str:
    """The ``gitVersion`` the API server reports, e.g. ``v1.32.0``."""
    http: Any = client._client._client  # lightkube's httpx client (see the module docstring)
    try:
        response = await http.get("/version", timeout=within)
    except TRANSPORT_ERRORS as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    if response.status_code != 200:
        raise Unreachable(f"GET /version answered {response.status_code}")
    try:
        return str(response.json().get("gitVersion") or "unknown")
    except ValueError:
        raise Unreachable("GET /version did not answer JSON") from None
