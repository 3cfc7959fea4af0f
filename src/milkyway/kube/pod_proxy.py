"""HTTP to a port of a pod through its cluster's API server (``pods/proxy``).

This is how Milkyway reaches the sidecar agents of member pods on any cluster: the same
TLS connection, credentials and RBAC as every other API call, and no network path of its
own to open. lightkube has no call for subresources that are not Kubernetes objects, so
this goes through the HTTP client a lightkube client already holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx2
from lightkube import AsyncClient


class PodProxyError(Exception):
    """The API server could not reach the pod's port (no pod, no address, nothing
    listening, or the proxy was refused); ``status`` is the API server's status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def proxy_path(namespace: str, pod: str, port: int | str, path: str) -> str:
    target = quote(f"{pod}:{port}", safe=":")
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{target}/proxy/{path.lstrip('/')}"


def _http(client: AsyncClient) -> Any:
    return client._client._client  # lightkube's httpx client (see the module docstring)


async def pod_request(
    client: AsyncClient,
    namespace: str,
    pod: str,
    port: int | str,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    within: float = 30.0,
) -> httpx2.Response:
    """One request to ``pod:port/path``; the pod's own answer, whatever its status."""
    url = proxy_path(namespace, pod, port, path)
    try:
        response = await _http(client).request(
            method, url, params=params, headers=headers, content=content, timeout=within
        )
    except httpx2.HTTPError as error:
        raise PodProxyError(0, f"{type(error).__name__}: {error}") from None
    _raise_for_proxy_failure(response, namespace, pod, port)
    return response


@asynccontextmanager
async def pod_stream(
    client: AsyncClient,
    namespace: str,
    pod: str,
    port: int | str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[httpx2.Response]:
    """A streamed GET of ``pod:port/path`` (a followed log), closed on exit."""
    http = _http(client)
    request = http.build_request("GET", proxy_path(namespace, pod, port, path), params=params)
    try:
        response = await http.send(request, stream=True)
    except httpx2.HTTPError as error:
        raise PodProxyError(0, f"{type(error).__name__}: {error}") from None
    try:
        if response.status_code >= 400:
            await response.aread()
            _raise_for_proxy_failure(response, namespace, pod, port)
        yield response
    finally:
        await response.aclose()


def _raise_for_proxy_failure(
    response: httpx2.Response, namespace: str, pod: str, port: int | str
) -> None:
    """A Kubernetes ``Status`` body means the API server answered, not the pod."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("kind") == "Status":
        message = body.get("message") or body.get("reason") or "refused"
        raise PodProxyError(
            response.status_code, f"pods/proxy to {namespace}/{pod}:{port}: {message}"
        )
