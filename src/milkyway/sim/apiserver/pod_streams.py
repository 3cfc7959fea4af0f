"""The connecting subresources: ``pods/proxy``, ``services/proxy``, ``pods/exec``,
``pods/attach`` and ``pods/portforward``.

They do not read or write stored objects; they open a connection to what runs in a pod.
Each is authorized like the real server authorizes it: proxy by the HTTP method's verb
(``get``, ``create``, ``update``, ``patch``, ``delete``), exec, attach and port-forward
with ``create`` whatever the method (a WebSocket upgrade is a GET, but opening a shell in
a pod is not a read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from milkyway.sim.apiserver import errors, http_proxy
from milkyway.sim.apiserver.auth import User, authorize
from milkyway.sim.apiserver.pod_exec import serve_exec
from milkyway.sim.apiserver.port_forward import serve_port_forward

if TYPE_CHECKING:
    from milkyway.sim.apiserver.server import ApiServer

_PROXY_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _connect_target(path: str) -> tuple[str, str, str] | None:
    """(namespace, pod, subresource) of an exec or portforward path."""
    parts = path.rstrip("/").split("/")
    # ['', 'api', 'v1', 'namespaces', ns, 'pods', name, 'exec']
    if len(parts) != 8 or parts[1:3] != ["api", "v1"] or parts[3] != "namespaces":
        return None
    if parts[5] != "pods" or parts[7] not in ("exec", "portforward"):
        return None
    return parts[4], parts[6], parts[7]


class PodStreams:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.proxy = http_proxy.HttpProxy()

    async def close(self) -> None:
        await self.proxy.close()

    async def route(self, request: web.Request, user: User) -> web.StreamResponse | None:
        """The response when the request is for one of these subresources, else None."""
        connect = _connect_target(request.path)
        if connect is not None:
            namespace, name, subresource = connect
            if request.method not in ("GET", "POST"):
                raise errors.method_not_allowed(
                    f"{request.method} is not supported on pods/{subresource}"
                )
            self._authorize(user, "create", "pods", subresource, name, namespace)
            if subresource == "exec":
                return await serve_exec(request, self.server.api, name, namespace)
            return await serve_port_forward(request, self.server.api, name, namespace)
        target = http_proxy.match(request.path)
        if target is None:
            return None
        verb = _PROXY_VERBS.get(request.method)
        if verb is None:
            raise errors.method_not_allowed(
                f"{request.method} is not supported through {target.resource}/proxy"
            )
        self._authorize(user, verb, target.resource, "proxy", target.segment, target.namespace)
        return await self.proxy.forward(request, self.server.api, target)

    def _authorize(
        self, user: User, verb: str, resource: str, subresource: str, name: str, namespace: str
    ) -> None:
        if self.server.access_hook is not None:
            from milkyway.sim.apiserver.server import AccessRecord

            self.server.access_hook(
                AccessRecord(user.name, verb, "", resource, subresource, namespace, name)
            )
        if not self.server.rbac:
            return
        allowed, _ = authorize(
            self.server.api,
            user=user.name,
            groups=user.groups,
            verb=verb,
            resource=resource,
            subresource=subresource,
            name=name,
            namespace=namespace,
        )
        if not allowed:
            raise errors.forbidden(user.name, verb, "", resource, name, namespace, subresource)
