"""The HTTP face of one simulated cluster: the Kubernetes REST API over aiohttp.

This layer only translates: URL and query to :class:`ClusterAPI` calls, bodies from JSON or
YAML, results to JSON (or a server-side Table), errors to ``Status`` objects. Every
semantic decision lives in :class:`ClusterAPI`, so in-process controllers and HTTP clients
see the same cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from milkyway.sim.apiserver import errors, openapi_v2_protobuf, protobuf_codec
from milkyway.sim.apiserver.api import ClusterAPI
from milkyway.sim.apiserver.auth import (
    TokenAuthenticator,
    User,
    authorize,
    impersonate,
    self_subject_review,
)
from milkyway.sim.apiserver.body_limits import check_depth, check_yaml_depth, plain_json
from milkyway.sim.apiserver.discovery import Discovery, version_info, wants_aggregated
from milkyway.sim.apiserver.duplicate_keys import duplicate_fields
from milkyway.sim.apiserver.errors import ApiError, Cause
from milkyway.sim.apiserver.field_manager import FIELD_MANAGER_MAX_LENGTH, field_manager_causes
from milkyway.sim.apiserver.kubectl_schemas import SchemasUnavailable, kubectl_schemas
from milkyway.sim.apiserver.metrics import ApiMetrics, RequestLabels
from milkyway.sim.apiserver.negotiation import Representation, negotiate, partial, partial_list
from milkyway.sim.apiserver.openapi import OpenAPIPublisher, ServedResource
from milkyway.sim.apiserver.pod_log_stream import serve_log
from milkyway.sim.apiserver.pod_streams import PodStreams
from milkyway.sim.apiserver.printing import to_table
from milkyway.sim.apiserver.resources import ResourceInfo
from milkyway.sim.apiserver.serviceaccount_tokens import token_request
from milkyway.sim.apiserver.store import BOOKMARK, DELETED, ERROR, Event
from milkyway.sim.apiserver.validation import strict_decoding_error

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
_BODY_TYPES = {
    "application/json",
    "application/yaml",
    "text/yaml",
    "application/x-yaml",
    "",
    protobuf_codec.PROTOBUF,
}
_TRUE = {"1", "true", "True"}
_OPEN_PATHS = {"/healthz", "/readyz", "/livez"}

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on libyaml being present
    _YamlLoader = yaml.SafeLoader


_INLINE_YAML_BYTES = 32 * 1024


def _decode_yaml(raw: bytes) -> Any:
    """A YAML body as plain JSON data, within the nesting, alias and size limits."""
    try:
        check_yaml_depth(raw, _YamlLoader)
        return plain_json(yaml.load(raw, Loader=_YamlLoader))
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise errors.bad_request(f"the request body is not valid YAML: {exc}") from None


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


@dataclass(frozen=True)
class Target:
    """A resource request: which resource, namespace, object and subresource."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str
    watch_path: bool = False


@dataclass(frozen=True)
class AccessRecord:
    """One resource request as RBAC sees it (``ApiServer.access_hook``)."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str


class ApiServer:
    """Serves one :class:`ClusterAPI` on ``127.0.0.1``.

    ``authenticator``: when given, every request except health checks needs a known bearer
    token (401 otherwise). ``rbac``: when True, requests are authorized against the stored
    RBAC objects (403 otherwise). ``bookmark_interval``: seconds between watch bookmarks.
    """

    def __init__(
        self,
        api: ClusterAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticator: TokenAuthenticator | None = None,
        rbac: bool = False,
        max_body_bytes: int = MAX_BODY_BYTES,
        bookmark_interval: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api = api
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.authenticator = authenticator
        self.rbac = rbac
        self.max_body_bytes = max_body_bytes
        self.bookmark_interval = bookmark_interval
        self.discovery = Discovery(api.registry)
        self.request_hook: Callable[[web.Request], Awaitable[None]] | None = None
        self.access_hook: Callable[[AccessRecord], None] | None = None
        """Called with every resource request's user and RBAC attributes, before they are
        authorized (an audit log: which verbs on which resources a client really uses)."""
        self._runner: web.AppRunner | None = None
        self._openapi: Any = None
        self._pod_streams = PodStreams(self)
        self.metrics = ApiMetrics()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        self.api.store.close_watchers()
        await self._pod_streams.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def listening(self) -> bool:
        return self._runner is not None and bool(self._runner.sites)

    async def pause_listening(self) -> None:
        """Close the listening socket and every open connection, watches included.

        New connections are refused until :meth:`resume_listening`, as when the cluster's
        network is cut off; a started server keeps its port.
        """
        if self._runner is None:
            raise RuntimeError("the API server is not started: call start() first")
        for site in list(self._runner.sites):
            await site.stop()
        self.drop_connections()

    async def resume_listening(self) -> None:
        """Listen again on the same port after :meth:`pause_listening`."""
        if self._runner is None:
            raise RuntimeError("the API server is not started: call start() first")
        if self._runner.sites:
            return
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()

    def drop_connections(self) -> None:
        """Break every open connection (watches included) without answering, as a network
        partition does; clients see their connection end and reconnect."""
        server = self._runner.server if self._runner is not None else None
        if server is None:
            return
        for handler in server.connections:
            handler.force_close()

    # ----------------------------------------------------------------- dispatch

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        response = await self._answer(request)
        self.metrics.observe(
            self._request_labels(request), response.status, time.perf_counter() - started
        )
        return response

    def _request_labels(self, request: web.Request) -> RequestLabels:
        parts = [p for p in request.path.split("/") if p]
        watch = request.query.get("watch", "") in _TRUE
        if len(parts) < (3 if parts[:1] == ["api"] else 4) or parts[0] not in ("api", "apis"):
            return RequestLabels(request.method)
        try:
            target = self._target(parts)
        except ApiError:
            return RequestLabels(request.method)
        watch = watch or target.watch_path
        verb = _verb(request.method, target, watch)
        verb = {"create": "POST", "update": "PUT"}.get(verb, verb.upper())
        if request.method == "PATCH" and _content_type(request) == "application/apply-patch+yaml":
            verb = "APPLY"
        if target.name is not None:
            scope = "resource"
        elif target.info.namespaced and target.namespace is not None:
            scope = "namespace"
        else:
            scope = "cluster"
        info = target.info
        return RequestLabels(verb, info.group, info.version, info.plural, target.subresource, scope)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            if self.request_hook is not None:
                await self.request_hook(request)
            user = impersonate(
                self.api, self._authenticate(request), request.headers, check=self.rbac
            )
            return await self._route(request, user)
        except ApiError as error:
            return _status_response(error)
        except web.HTTPRequestEntityTooLarge:
            return _status_response(
                errors.request_entity_too_large(
                    f"the request body is larger than the limit of {self.max_body_bytes} bytes"
                )
            )
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.path)
            return _status_response(errors.internal_error(f"{type(exc).__name__}: {exc}"))

    def _authenticate(self, request: web.Request) -> User:
        if self.authenticator is None:
            return User("admin", "admin", ("system:masters", "system:authenticated"))
        if request.path in _OPEN_PATHS:
            return User("system:anonymous", "", ("system:unauthenticated",))
        header = request.headers.get("Authorization")
        user = self.authenticator.authenticate(header) or self.api.authenticate_token(header)
        if user is None:
            raise errors.unauthorized()
        return user

    def _authorize_path(self, user: User, request: web.Request) -> None:
        if not self.rbac or request.path in _OPEN_PATHS:
            return
        allowed, _ = authorize(
            self.api,
            user=user.name,
            groups=user.groups,
            verb=request.method.lower(),
            path=request.path,
            resource_request=False,
        )
        if not allowed:
            raise ApiError(
                403,
                "Forbidden",
                f'forbidden: User "{user.name}" cannot {request.method.lower()} path '
                f'"{request.path}"',
            )

    async def _route(self, request: web.Request, user: User) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            self._authorize_path(user, request)
            return await self._non_resource(request, path)
        if request.method == "GET":
            doc = self._discovery(request, parts)
            if doc is not None:
                self._authorize_path(user, request)
                return doc
        streamed = await self._pod_streams.route(request, user)
        if streamed is not None:
            return streamed
        target = self._target(parts)
        if target.info.namespaced and target.namespace is None and request.method != "GET":
            raise errors.method_not_allowed(
                f"{request.method} is not supported across namespaces: use "
                f".../namespaces/<namespace>/{target.info.plural}"
            )
        query = request.query
        watch = target.watch_path or query.get("watch", "") in _TRUE
        verb = _verb(request.method, target, watch)
        if self.access_hook is not None:
            self.access_hook(
                AccessRecord(
                    user=user.name,
                    verb=verb,
                    group=target.info.group,
                    resource=target.info.plural,
                    subresource=target.subresource or "",
                    namespace=target.namespace or "",
                    name=target.name or "",
                )
            )
        if self.rbac:
            allowed, _ = authorize(
                self.api,
                user=user.name,
                groups=user.groups,
                verb=verb,
                api_group=target.info.group,
                resource=target.info.plural,
                subresource=target.subresource,
                name=target.name or "",
                namespace=target.namespace or "",
            )
            if not allowed:
                raise errors.forbidden(
                    user.name,
                    verb,
                    target.info.group,
                    target.info.plural,
                    target.name or "",
                    target.namespace or "",
                    target.subresource,
                )
        method = request.method
        if method == "GET":
            if watch:
                return await self._watch(request, target)
            if target.subresource == "log" and target.name and target.namespace:
                return await serve_log(request, self.api, target.name, target.namespace)
            return self._get(request, target)
        if method == "POST":
            return await self._post(request, target, user)
        if method == "PUT":
            return await self._put(request, target)
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE":
            return await self._delete(request, target)
        raise errors.method_not_allowed(f"the server does not allow the method {method}")

    # ----------------------------------------------------------------- non-resource paths

    async def _non_resource(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.method_not_allowed(f"{request.method} is not allowed on {path}")
        if path == "/version":
            return _json(version_info(self.api.kubernetes_version))
        if path == "/metrics":
            return web.Response(
                text=self.metrics.render(self.api),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )
        if path in _OPEN_PATHS or path.startswith(("/healthz/", "/readyz/", "/livez/")):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/openapi/v2":
            document = self._publisher().v2_document()
            if openapi_v2_protobuf.wants_protobuf(request.headers.get("Accept", "")):
                return await self._openapi_v2_protobuf(document)
            return _json(document)
        if path == "/openapi/v3":
            return _json(self._publisher().v3_index())
        if path.startswith("/openapi/v3/"):
            doc = self._publisher().v3_document(path[len("/openapi/v3/") :])
            if doc is None:
                raise errors.ApiError(404, "NotFound", f"no OpenAPI document for {path}")
            return _json(doc)
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _openapi_v2_protobuf(self, document: dict[str, Any]) -> web.Response:
        def encode() -> bytes:
            try:
                return openapi_v2_protobuf.encode_document(document, kubectl_schemas())
            except SchemasUnavailable as exc:
                raise errors.ApiError(406, "NotAcceptable", str(exc)) from None

        body = await asyncio.to_thread(encode)
        return web.Response(
            body=body,
            headers={"Content-Type": openapi_v2_protobuf.OPENAPI_V2_PROTOBUF_CONTENT_TYPE},
        )

    def _publisher(self) -> Any:
        if self._openapi is None:
            registry = self.api.registry

            def served() -> list[Any]:
                return [
                    ServedResource(
                        group=info.group,
                        version=info.version,
                        kind=info.kind,
                        plural=info.plural,
                        namespaced=info.namespaced,
                        schema=info.schema if info.custom else None,
                        verbs=info.verbs,
                        subresources=tuple(sub.name for sub in info.subresources),
                        list_kind=info.list_kind,
                    )
                    for info in registry
                ]

            self._openapi = OpenAPIPublisher(
                self.api.schemas, served, kubernetes_version=f"v{self.api.kubernetes_version}.0"
            )
        return self._openapi

    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response | None:
        accept = request.headers.get("Accept", "")
        aggregated = wants_aggregated(accept)
        d = self.discovery
        if parts == ["api"]:
            if aggregated:
                return _json(d.aggregated(True, aggregated), content_type=aggregated)
            return _json(d.api_versions(f"{self.host}:{self.port}"))
        if parts == ["apis"]:
            if aggregated:
                return _json(d.aggregated(False, aggregated), content_type=aggregated)
            return _json(d.group_list())
        if parts[0] == "api" and len(parts) == 2:
            doc = d.resource_list("", parts[1])
            if doc is None:
                raise errors.ApiError(404, "NotFound", f"the server does not serve {parts[1]}")
            return _json(doc)
        if parts[0] == "apis" and len(parts) == 2:
            doc = d.group(parts[1])
            if doc is None:
                raise errors.ApiError(404, "NotFound", f"the server does not serve {parts[1]}")
            return _json(doc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = d.resource_list(parts[1], parts[2])
            if doc is None:
                raise errors.ApiError(
                    404, "NotFound", f"the server does not serve {parts[1]}/{parts[2]}"
                )
            return _json(doc)
        return None

    def _target(self, parts: list[str]) -> Target:
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 4:
                raise errors.ApiError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            group, version, rest = parts[1], parts[2], parts[3:]
        watch_path = False
        if rest and rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        namespace: str | None = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise errors.ApiError(
                404, "NotFound", "the server could not find the requested resource"
            )
        info = self.api.registry.lookup(group, version, rest[0])
        if info is None:
            raise errors.ApiError(
                404,
                "NotFound",
                "the server could not find the requested resource",
                group=group,
                kind=rest[0],
            )
        if namespace is not None and not info.namespaced:
            raise errors.ApiError(
                404, "NotFound", f"{info.resource_name} is not namespaced; drop the namespace"
            )
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else ""
        if info.namespaced and namespace is None and name is not None:
            raise errors.ApiError(
                404,
                "NotFound",
                f"{info.resource_name} are namespaced: use "
                f"/{parts[0]}/.../namespaces/<namespace>/{info.plural}/{name}",
            )
        if sub and info.subresource(sub) is None:
            raise errors.ApiError(
                404, "NotFound", f"{info.resource_name} has no subresource {sub!r}"
            )
        return Target(info, namespace, name, sub, watch_path)

    # ----------------------------------------------------------------- reads

    def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        api, info, query = self.api, target.info, request.query
        if target.name is None:
            listed = api.list_stored(
                info,
                namespace=target.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                limit=_int(query, "limit"),
                continue_=query.get("continue"),
                resource_version=query.get("resourceVersion"),
                resource_version_match=query.get("resourceVersionMatch"),
            )
            rep = _representation(request, collection=True)
            if rep.table:
                return _json(
                    self._table(listed["items"], info, request, list_metadata=listed["metadata"])
                )
            if rep.metadata_only:
                return _json(partial_list(listed, rep))
            return _json(listed)
        if target.subresource == "scale":
            return _json(api.get_scale(info, target.name, namespace=target.namespace))
        if target.subresource not in ("", "status"):
            raise errors.method_not_allowed(f"GET is not supported on {target.subresource}")
        rep = _representation(request, collection=False)
        obj = api.get_stored(info, target.name, namespace=target.namespace)
        if rep.table:
            return _json(self._table([obj], info, request))
        if rep.metadata_only:
            return _json(partial(obj, rep))
        return _json(obj)

    def _table(
        self,
        objects: list[dict[str, Any]],
        info: ResourceInfo,
        request: web.Request,
        *,
        list_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return to_table(
            objects,
            group=info.group,
            kind=info.kind,
            printer_columns=list(info.printer_columns) if info.custom else None,
            include_object=request.query.get("includeObject", "Metadata"),
            list_metadata=list_metadata,
        )

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        info = target.info
        field_selector = query.get("fieldSelector")
        if target.name:
            name_sel = f"metadata.name={target.name}"
            field_selector = f"{field_selector},{name_sel}" if field_selector else name_sel
        bookmarks = query.get("allowWatchBookmarks", "") in _TRUE
        send_initial = query.get("sendInitialEvents", "") in _TRUE
        timeout = _int(query, "timeoutSeconds")
        table = _representation(request, collection=True, watch=True)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
            watcher = self.api.watch(
                info,
                namespace=target.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=field_selector,
                resource_version=query.get("resourceVersion"),
                send_initial_events=send_initial or None,
            )
        except ApiError as error:
            if error.code != 410:
                raise
            await response.prepare(request)
            await response.write(_dumps({"type": ERROR, "object": error.to_status()}) + b"\n")
            await response.write_eof()
            return response
        await response.prepare(request)
        deadline = time.monotonic() + timeout if timeout else None
        try:
            if send_initial:
                # The initial ADDED events are queued when the watch starts; the bookmark
                # after them tells the client its view is complete.
                chunk = bytearray()
                for event in watcher.drain():
                    chunk += self._encode_event(event, info, request, table)
                await response.write(bytes(chunk) + self._bookmark(info, initial_end=True))
            while True:
                wait = self.bookmark_interval if bookmarks else None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    wait = remaining if wait is None else min(wait, remaining)
                got = await watcher.wait(wait)
                events = watcher.drain()
                if events:
                    chunk = bytearray()
                    for event in events:
                        chunk += self._encode_event(event, info, request, table)
                    await response.write(bytes(chunk))
                    continue
                if watcher.closed:
                    if watcher.error is not None:
                        await response.write(
                            _dumps({"type": ERROR, "object": watcher.error.to_status()}) + b"\n"
                        )
                    break
                if not got and bookmarks:
                    await response.write(self._bookmark(info))
            if bookmarks and not watcher.closed:
                await response.write(self._bookmark(info))
        except ConnectionResetError:
            return response
        finally:
            watcher.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _bookmark(self, info: ResourceInfo, *, initial_end: bool = False) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(self.api.revision)}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        return (
            _dumps(
                {
                    "type": BOOKMARK,
                    "object": {
                        "kind": info.kind,
                        "apiVersion": info.api_version,
                        "metadata": metadata,
                    },
                }
            )
            + b"\n"
        )

    def _encode_event(
        self, event: Event, info: ResourceInfo, request: web.Request, rep: Representation
    ) -> bytes:
        table = rep.table
        plain = not rep.as_ and event.object.get("apiVersion") == info.api_version
        if plain and event.encoded is not None:
            return event.encoded
        obj = event.object
        if event.type == DELETED and event.old is not None:
            obj = dict(event.old)
            obj["metadata"] = {**event.old["metadata"], "resourceVersion": str(event.revision)}
        if obj.get("apiVersion") != info.api_version:
            obj = {**obj, "apiVersion": info.api_version}
        if table:
            obj = self._table([obj], info, request)
        elif rep.metadata_only:
            obj = partial(obj, rep)
        line = _dumps({"type": event.type, "object": obj}) + b"\n"
        if plain:
            # Every watcher of a resource shares the event; encode it once for all of them.
            event.encoded = line
        return line

    # ----------------------------------------------------------------- writes

    async def _body(
        self, request: web.Request, info: ResourceInfo, warnings: list[str] | None = None
    ) -> Any:
        """The decoded body; duplicate JSON keys fail it under ``fieldValidation=Strict``
        and add warnings under ``Warn``, as the real server's strict decoder does."""
        raw = await request.read()
        if len(raw) > self.max_body_bytes:
            raise errors.request_entity_too_large(
                f"the request body is larger than the limit of {self.max_body_bytes} bytes"
            )
        content_type = _content_type(request)
        if not raw.strip():
            raise errors.bad_request("the request body is empty: send a JSON or YAML object")
        if content_type == protobuf_codec.PROTOBUF:
            return await self._protobuf_body(raw)
        if content_type in ("application/yaml", "text/yaml", "application/x-yaml") or (
            content_type == "application/apply-patch+yaml"
        ):
            if len(raw) <= _INLINE_YAML_BYTES:
                return _decode_yaml(raw)
            # PyYAML builds a few hundred thousand nodes a second: a large body is decoded
            # beside the event loop so that the other clusters it serves keep answering.
            return await asyncio.to_thread(_decode_yaml, raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
        check_depth(body)
        validation = request.query.get("fieldValidation") or "Warn"
        if validation in ("Strict", "Warn"):
            duplicates = [f'duplicate field "{path}"' for path in duplicate_fields(raw, body)]
            if duplicates and validation == "Strict":
                raise strict_decoding_error(
                    info.kind,
                    info.api_version,
                    [Cause("FieldValueDuplicate", message, "") for message in duplicates],
                )
            if warnings is not None:
                warnings.extend(duplicates)
        return body

    async def _protobuf_body(self, raw: bytes) -> dict[str, Any]:
        """Decode with the schemas of the kubectl on PATH; scanning the binary takes
        seconds the first time, so it runs off the event loop."""
        schemas = await asyncio.to_thread(protobuf_codec.schemas_or_415, kubectl_schemas)
        return protobuf_codec.decode_body(raw, schemas)

    def _write_options(self, request: web.Request, options_kind: str) -> dict[str, Any]:
        """The write's query options; ``options_kind`` (``CreateOptions``, ``UpdateOptions``,
        ``PatchOptions``) names them in a 422, as the real server does."""
        query = request.query
        dry_run = query.getall("dryRun", [])
        for value in dry_run:
            if value != "All":
                raise errors.bad_request(f'invalid dryRun "{value}": the only value is "All"')
        causes = field_manager_causes(query.get("fieldManager") or "")
        if causes:
            raise errors.invalid("meta.k8s.io", options_kind, "", causes)
        manager = query.get("fieldManager") or _manager_from_agent(request)
        validation = query.get("fieldValidation") or "Warn"
        return {
            "dry_run": bool(dry_run),
            "field_manager": manager,
            "field_validation": validation,
        }

    async def _post(self, request: web.Request, target: Target, user: User) -> web.StreamResponse:
        api, info = self.api, target.info
        if info.plural == "selfsubjectreviews":  # no spec: the answer is who is asking
            return _json(self_subject_review(user), status=201)
        content_type = _content_type(request)
        if content_type not in _BODY_TYPES:
            raise errors.unsupported_media_type(content_type)
        warnings: list[str] = []
        body = await self._body(request, info, warnings)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a single JSON or YAML object")
        if target.name is not None:
            if target.subresource == "eviction":
                return _json(api.evict(target.name, body, namespace=target.namespace), status=201)
            if target.subresource == "token":
                return _json(
                    token_request(self.api, target.name, target.namespace or "", body), status=201
                )
            if target.subresource == "binding":
                api.bind(target.name, body.get("target") or {}, namespace=target.namespace)
                return _json(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "code": 201,
                    },
                    status=201,
                )
            raise errors.method_not_allowed(f"POST is not supported on {request.path}")
        if info.plural in (
            "selfsubjectaccessreviews",
            "subjectaccessreviews",
            "localsubjectaccessreviews",
        ):
            if target.namespace:
                body.setdefault("metadata", {})["namespace"] = target.namespace
            body.setdefault("kind", info.kind)
            return _json(api.review_access(body, user=user.name, groups=user.groups), status=201)
        with self.api.sharing():
            created = api.create(
                body,
                namespace=target.namespace,
                resource=info,
                warnings=warnings,
                **self._write_options(request, "CreateOptions"),
            )
        return _json(created, status=201, warnings=warnings)

    async def _put(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.name is None:
            raise errors.method_not_allowed("PUT needs an object name in the path")
        content_type = _content_type(request)
        if content_type not in _BODY_TYPES:
            raise errors.unsupported_media_type(content_type)
        warnings: list[str] = []
        body = await self._body(request, target.info, warnings)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a single JSON or YAML object")
        options = self._write_options(request, "UpdateOptions")
        if target.subresource == "scale":
            result = self.api.update_scale(
                target.info,
                target.name,
                body,
                namespace=target.namespace,
                dry_run=options["dry_run"],
                field_manager=options["field_manager"],
            )
            return _json(result)
        with self.api.sharing():
            result = self.api.update(
                body,
                namespace=target.namespace,
                resource=target.info,
                name=target.name,
                subresource=target.subresource,
                warnings=warnings,
                **options,
            )
        return _json(result, warnings=warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.name is None:
            raise errors.method_not_allowed("PATCH needs an object name in the path")
        content_type = _content_type(request)
        patch_type = _PATCH_TYPES.get(content_type)
        if patch_type is None or patch_type == "apply-cbor":
            raise errors.unsupported_media_type(content_type)
        warnings: list[str] = []
        body = await self._body(request, target.info, warnings)
        options = self._write_options(request, "PatchOptions")
        if patch_type == "apply" and not request.query.get("fieldManager"):
            raise errors.bad_request(
                "PATCH with application/apply-patch+yaml requires the fieldManager query "
                "parameter (kubectl: --field-manager)"
            )
        with self.api.sharing():
            result = self.api.patch(
                target.info,
                target.name,
                body,
                patch_type=patch_type,
                namespace=target.namespace,
                subresource=target.subresource,
                force=request.query.get("force", "") in _TRUE,
                warnings=warnings,
                **options,
            )
        return _json(result, warnings=warnings)

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.startswith(protobuf_codec.MAGIC):
                options = await self._protobuf_body(raw)
            elif raw.strip():
                try:
                    options = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise errors.bad_request(f"DeleteOptions is not valid JSON: {exc}") from None
                if not isinstance(options, dict):
                    raise errors.bad_request("DeleteOptions must be a JSON object")
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = query.get("orphanDependents") or options.get("orphanDependents")
        if policy is None and orphan in (True, "true"):
            policy = "Orphan"
        grace = _int(query, "gracePeriodSeconds")
        if grace is None and options.get("gracePeriodSeconds") is not None:
            grace = int(options["gracePeriodSeconds"])
        dry_run = bool(query.getall("dryRun", [])) or bool(options.get("dryRun"))
        if target.name is None:
            result = self.api.delete_collection(
                target.info,
                namespace=target.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
                propagation_policy=policy,
                grace_period_seconds=grace,
                dry_run=dry_run,
            )
            return _json(result)
        obj, removed = self.api.delete_object(
            target.info,
            target.name,
            namespace=target.namespace,
            propagation_policy=policy,
            grace_period_seconds=grace,
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        return _json(obj, status=200 if removed else 202)


def _content_type(request: web.Request) -> str:
    """The body's media type; a missing header means JSON, as for the real server."""
    if "Content-Type" not in request.headers:
        return "application/json"
    return request.content_type


def _verb(method: str, target: Target, watch: bool) -> str:
    if method == "GET":
        if watch:
            return "watch"
        return "get" if target.name else "list"
    if method == "DELETE" and target.name is None:
        return "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
        method, method.lower()
    )


def _representation(
    request: web.Request, *, collection: bool, watch: bool = False
) -> Representation:
    return negotiate(request.headers.get("Accept", ""), collection=collection, watch=watch)


def _int(query: Any, key: str) -> int | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid {key} "{raw}": must be an integer') from None


def _manager_from_agent(request: web.Request) -> str:
    """The User-Agent's product, printable characters only and cut to the manager length
    limit, as the real server derives a manager when the request names none."""
    product = request.headers.get("User-Agent", "").split("/", 1)[0]
    kept = ""
    for char in product:
        if not char.isprintable():
            continue
        if len((kept + char).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        kept += char
    return kept or "unknown"


def _json(
    value: Any,
    *,
    status: int = 200,
    content_type: str = JSON,
    warnings: list[str] | None = None,
) -> web.Response:
    headers = {"Content-Type": content_type}
    response = web.Response(body=_dumps(value), status=status, headers=headers)
    for warning in warnings or ():
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def _status_response(error: ApiError) -> web.Response:
    response = _json(error.to_status(), status=error.code)
    if error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response
