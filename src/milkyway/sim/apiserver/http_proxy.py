"""``pods/proxy`` and ``services/proxy``: HTTP forwarded to a pod's or a service
endpoint's address, as the real API server forwards it.

The name segment may carry a scheme and a port: ``name``, ``name:port``,
``https:name:port`` (for services the port may be the service port's name). A pod without
a port goes to its first declared container port (80 when none is declared); a service
goes to a ready address of its Endpoints, on the port that matches the chosen service
port. The path after ``/proxy`` and the query string are forwarded; bodies stream both
ways; hop-by-hop headers and the client's ``Authorization`` are not passed on (the
cluster credentials never reach a pod); a redirect ``Location`` on the target is
rewritten to go through the proxy again. Nothing listening, or no address yet, answers
``503 ServiceUnavailable`` as a ``Status``. HTML bodies are passed through unchanged
(the real server also rewrites links inside HTML pages).
"""

from __future__ import annotations

import os
import random
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from milkyway.sim.apiserver import errors

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "impersonate-user", "impersonate-group"}
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ProxyRequest:
    """``/api/v1/namespaces/{namespace}/{pods|services}/{name}/proxy[/{path}]``."""

    resource: str  # "pods" or "services"
    namespace: str
    segment: str  # the name as written: name, name:port or scheme:name:port
    path: str  # what follows /proxy, with its leading "/"
    prefix: str  # the request path up to and including /proxy

    @property
    def scheme(self) -> str:
        return self._split()[0]

    @property
    def name(self) -> str:
        return self._split()[1]

    @property
    def port(self) -> str:
        return self._split()[2]

    def _split(self) -> tuple[str, str, str]:
        parts = self.segment.split(":")
        if len(parts) == 1:
            return "", parts[0], ""
        if len(parts) == 2:
            return "", parts[0], parts[1]
        if len(parts) == 3 and parts[0] in ("http", "https"):
            return parts[0], parts[1], parts[2]
        raise errors.bad_request(
            f'invalid proxy target "{self.segment}": use name, name:port or scheme:name:port '
            "(scheme http or https)"
        )


def match(raw_path: str) -> ProxyRequest | None:
    """The proxy request a core-API path names, or None when it is not one."""
    parts = raw_path.split("/")
    # ['', 'api', 'v1', 'namespaces', ns, 'pods', name, 'proxy', ...]
    if len(parts) < 8 or parts[1:3] != ["api", "v1"] or parts[3] != "namespaces":
        return None
    if parts[5] not in ("pods", "services") or parts[7] != "proxy":
        return None
    if not parts[4] or not parts[6]:
        return None
    rest = parts[8:]
    path = "/" + "/".join(rest) if rest else "/"
    return ProxyRequest(parts[5], parts[4], parts[6], path, "/".join(parts[:8]))


def pod_address(api: ClusterAPI, request: ProxyRequest) -> tuple[str, str, int]:
    """(scheme, host, port) of the pod a proxy request names."""
    pod = api.get("pods", request.name, namespace=request.namespace)
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.service_unavailable(
            f'pod "{request.name}" has no IP address yet: it is not running'
        )
    port_text = request.port
    if not port_text:
        port_text = "80"
        for container in (pod.get("spec") or {}).get("containers") or []:
            ports = container.get("ports") or []
            if ports:
                port_text = str(ports[0].get("containerPort"))
                break
    return request.scheme or "http", ip, _port_number(port_text, request.segment)


def service_address(api: ClusterAPI, request: ProxyRequest) -> tuple[str, str, int]:
    """(scheme, host, port) of a ready endpoint of the service a proxy request names."""
    service = api.get("services", request.name, namespace=request.namespace)
    ports = (service.get("spec") or {}).get("ports") or []
    wanted = request.port
    chosen: dict[str, Any] | None = None
    for port in ports:
        if not wanted or wanted in (str(port.get("name", "")), str(port.get("port"))):
            chosen = port
            break
    if chosen is None:
        raise errors.service_unavailable(
            f'no service port "{wanted}" found for service "{request.name}"'
        )
    try:
        endpoints = api.get("endpoints", request.name, namespace=request.namespace)
    except errors.ApiError as exc:
        if exc.code != 404:
            raise
        endpoints = {}
    port_name = str(chosen.get("name", ""))
    candidates: list[tuple[str, int]] = []
    for subset in endpoints.get("subsets") or []:
        for port in subset.get("ports") or []:
            if str(port.get("name", "")) != port_name:
                continue
            for address in subset.get("addresses") or []:
                candidates.append((address["ip"], int(port["port"])))
    if not candidates:
        raise errors.service_unavailable(f'no endpoints available for service "{request.name}"')
    host, port_number = random.choice(candidates)
    return request.scheme or "http", host, port_number


def _port_number(text: str, segment: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise errors.bad_request(
            f'invalid port "{text}" in "{segment}": a pod proxy needs a port number'
        ) from None
    if not 0 < number < 65536:
        raise errors.bad_request(f'invalid port {number} in "{segment}": use 1-65535')
    return number


class HttpProxy:
    """Forwards proxy requests with one pooled HTTP client per API server."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self._insecure = insecure

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def forward(
        self, request: web.Request, api: ClusterAPI, target: ProxyRequest
    ) -> web.StreamResponse:
        if target.resource == "pods":
            scheme, host, port = pod_address(api, target)
        else:
            scheme, host, port = service_address(api, target)
        url = f"{scheme}://{_host(host)}:{port}{target.path}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        body = request.content if request.body_exists else None
        try:
            upstream = await self._client().request(
                request.method,
                url,
                params=request.rel_url.query,
                headers=headers,
                data=body,
                allow_redirects=False,
                ssl=self._insecure if scheme == "https" else True,
            )
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            raise errors.service_unavailable(
                f"error trying to reach {target.resource[:-1]}: dial tcp {_host(host)}:{port}: "
                f"connect: {dial_failure(exc)}"
            ) from None
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() in _HOP_BY_HOP:
                    continue
                if key.lower() == "location":
                    value = _rewrite_location(value, target, f"{host}:{port}")
                response.headers.add(key, value)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                return response  # the target broke off; the client sees the body end
            await response.write_eof()
            return response


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def dial_failure(exc: BaseException) -> str:
    """Why a connection failed, worded as Go words it (``connection refused``)."""
    error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno).lower()
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return str(exc) or type(exc).__name__


def _rewrite_location(value: str, target: ProxyRequest, address: str) -> str:
    """A redirect to a path on the target stays behind the proxy."""
    parts = urlsplit(value)
    if parts.netloc and parts.netloc != address:
        return value
    if not parts.path.startswith("/"):
        return value
    rewritten = target.prefix + parts.path
    return rewritten + (f"?{parts.query}" if parts.query else "")
