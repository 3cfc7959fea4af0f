"""Server-sent-event streams of Application, FlowRun and Cluster changes, for live views.

Each is backed by a Kubernetes watch made as the caller: a user sees the changes of exactly
the objects they may list. Each event is ``event: ADDED|MODIFIED|DELETED`` with the
object as JSON ``data`` and its resourceVersion as ``id``; a comment line every
``heartbeat`` seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from lightkube.core.resource import NamespacedResource

from milkyway.kube.applications import list_page
from milkyway.kube.resources import APPLICATION, CLUSTER, FLOWRUN
from milkyway.server.routes.applications import LIST_RESPONSES, NAME
from milkyway.server.state import Caller, kube_as

router = APIRouter(tags=["events"])
HEARTBEAT_SECONDS = 15.0


@router.get(
    "/events/applications",
    responses={**LIST_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def application_events(
    request: Request,
    identity: Caller,
    namespace: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
) -> StreamingResponse:
    return await watch_stream(request, identity, APPLICATION, namespace)


@router.get(
    "/events/flowruns",
    responses={**LIST_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def flowrun_events(
    request: Request,
    identity: Caller,
    namespace: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
) -> StreamingResponse:
    """FlowRun changes (steps starting, finishing, waiting for approval), as for
    Applications."""
    return await watch_stream(request, identity, FLOWRUN, namespace)


@router.get(
    "/events/clusters",
    responses={**LIST_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def cluster_events(request: Request, identity: Caller) -> StreamingResponse:
    """Member Cluster changes (reachability, version, heartbeats)."""
    return await watch_stream(request, identity, CLUSTER, None)


async def watch_stream(
    request: Request, identity: Caller, resource: Any, namespace: str | None
) -> StreamingResponse:
    client = kube_as(request, identity)
    # Listing first both checks the caller may (a 403 before the stream starts) and gives
    # the version the watch starts after.
    _, _, version = await list_page(client, resource, namespace=namespace, limit=1)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
    namespaced = issubclass(resource, NamespacedResource)

    async def pump() -> None:
        try:
            async for kind, obj in client.watch(
                resource,
                **({"namespace": "*" if namespace is None else namespace} if namespaced else {}),
                resource_version=version,
            ):
                data = obj.to_dict()
                meta = data.get("metadata") or {}
                await queue.put(
                    f"id: {meta.get('resourceVersion', '')}\nevent: {kind}\n"
                    f"data: {json.dumps(data, separators=(',', ':'))}\n\n"
                )
        finally:
            await queue.put(None)

    async def stream() -> AsyncIterator[str]:
        task = asyncio.create_task(pump())
        try:
            yield f": watching {resource._api_info.plural}\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
                    continue
                if item is None:
                    return
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return StreamingResponse(stream(), media_type="text/event-stream")
