"""Generic built-in tasks: apply, delete, wait, sleep, HTTP call, notify.

Each is idempotent as the engine requires: apply is server-side apply (declares the end
state), delete treats "already gone" as success, wait only reads, HTTP calls carry the
step's idempotency key in a header so the receiver can de-duplicate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, cast

import httpx
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError, LoadResourceError
from lightkube.generic_resource import async_load_in_cluster_generic_resources, get_generic_resource
from pydantic import BaseModel, ConfigDict, Field

from milkyway.flows.expr import ExpressionError, truthy
from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, task
from milkyway.kube.cluster_client import ClusterClient

FIELD_MANAGER = "milkyway-flows"
NOTIFY_HOOKS: list[Any] = []
"""Callables ``(channel, message, fields) -> None`` that receive ``notify`` calls."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ApplyParams(_Params):
    cluster: str | None = None
    manifests: list[dict[str, Any]] = Field(min_length=1)
    namespace: str | None = None
    force: bool = True


class ObjectRef(_Params):
    cluster: str | None = None
    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str
    namespace: str | None = None


class WaitParams(ObjectRef):
    condition: str
    """CEL over ``object``, e.g. ``object.status.readyReplicas == 3``."""
    timeout: float = Field(default=300.0, gt=0)
    interval: float = Field(default=1.0, gt=0)


class SleepParams(_Params):
    seconds: float = Field(ge=0)


class HttpParams(_Params):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    json_body: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout: float = Field(default=30.0, gt=0)


class NotifyParams(_Params):
    channel: str = "default"
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


async def resource_class(client: ClusterClient, api_version: str, kind: str) -> Any:
    """The lightkube class for ``apiVersion``/``kind``, discovering CRDs when needed."""
    try:
        return codecs.resource_registry.load(api_version, kind)
    except LoadResourceError:
        pass
    found = get_generic_resource(api_version, kind)
    if found is None:
        await async_load_in_cluster_generic_resources(cast(AsyncClient, client))
        found = get_generic_resource(api_version, kind)
    if found is None:
        raise FatalError(f"the cluster serves no {kind} in {api_version}; install its CRD first")
    return found


def _api_error(exc: ApiError, what: str) -> Exception:
    code = exc.status.code or 0
    message = f"{what}: {code} {exc.status.message}"
    if code in (408, 409, 429) or code >= 500:
        return RetryableError(message)
    return FatalError(message)


@task("k8s.apply")
async def apply_manifests(params: ApplyParams, ctx: TaskContext) -> dict[str, Any]:
    """Server-side apply every manifest (idempotent: it declares the end state)."""
    client = ctx.client(params.cluster)
    applied = []
    for manifest in params.manifests:
        await resource_class(client, manifest.get("apiVersion", ""), manifest.get("kind", ""))
        try:
            obj = codecs.from_dict(manifest)
        except LoadResourceError as exc:
            raise FatalError(f"manifest {manifest.get('kind')!r}: {exc}") from exc
        name = manifest.get("metadata", {}).get("name", "")
        try:
            await client.apply(
                obj, namespace=params.namespace, field_manager=FIELD_MANAGER, force=params.force
            )
        except ApiError as exc:
            raise _api_error(exc, f"apply {manifest.get('kind')}/{name}") from exc
        applied.append(f"{manifest.get('kind')}/{name}")
        ctx.heartbeat(f"applied {len(applied)}/{len(params.manifests)}")
    return {"applied": applied}


@task("k8s.delete")
async def delete_object(params: ObjectRef, ctx: TaskContext) -> dict[str, Any]:
    """Delete one object; an object already gone is success (idempotent)."""
    client = ctx.client(params.cluster)
    resource = await resource_class(client, params.api_version, params.kind)
    try:
        await client.delete(resource, params.name, namespace=params.namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return {"deleted": False}
        raise _api_error(exc, f"delete {params.kind}/{params.name}") from exc
    return {"deleted": True}


@task("k8s.wait")
async def wait_for(params: WaitParams, ctx: TaskContext) -> dict[str, Any]:
    """Poll an object until a CEL condition over it holds; retryable on timeout."""
    client = ctx.client(params.cluster)
    resource = await resource_class(client, params.api_version, params.kind)
    deadline = time.monotonic() + params.timeout
    last = "not found"
    while True:
        try:
            obj = await client.get(resource, params.name, namespace=params.namespace)
            data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
            try:
                if truthy(params.condition, {"object": data}):
                    return {"resourceVersion": data.get("metadata", {}).get("resourceVersion")}
                last = "condition false"
            except ExpressionError as exc:
                last = str(exc)
        except ApiError as exc:
            if exc.status.code != 404:
                raise _api_error(exc, f"get {params.kind}/{params.name}") from exc
        ctx.heartbeat(f"{params.kind}/{params.name}: {last}")
        if time.monotonic() >= deadline:
            raise RetryableError(
                f"{params.kind}/{params.name}: {params.condition!r} not true after "
                f"{params.timeout:g}s ({last})"
            )
        await asyncio.sleep(params.interval)


@task("sleep")
async def sleep(params: SleepParams, ctx: TaskContext) -> dict[str, Any]:
    """Wait; an interrupted sleep starts over (prefer ``strategy.pause`` for durable waits)."""
    await asyncio.sleep(params.seconds)
    return {"slept": params.seconds}


@task("http")
async def http_call(params: HttpParams, ctx: TaskContext) -> dict[str, Any]:
    """Call a URL with an ``Idempotency-Key`` header; 5xx and 429 are retryable."""
    headers = {"Idempotency-Key": ctx.idempotency_key, **params.headers}
    try:
        async with httpx.AsyncClient(timeout=params.timeout, trust_env=False) as http:
            response = await http.request(
                params.method, params.url, json=params.json_body, headers=headers
            )
    except httpx.HTTPError as exc:
        raise RetryableError(f"{params.method} {params.url}: {exc}") from exc
    if response.status_code not in params.expect_status:
        message = f"{params.method} {params.url}: HTTP {response.status_code}"
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(message)
        raise FatalError(message)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


@task("notify")
async def notify(params: NotifyParams, ctx: TaskContext) -> dict[str, Any]:
    """Hand a message to the registered notify hooks (and the log)."""
    ctx.logger.info("notify %s: %s", params.channel, params.message)
    for hook in NOTIFY_HOOKS:
        result = hook(params.channel, params.message, {**params.fields, "run": ctx.run_id})
        if asyncio.iscoroutine(result):
            await result
    return {"channel": params.channel, "delivered": len(NOTIFY_HOOKS)}
