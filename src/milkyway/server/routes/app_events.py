"""The Kubernetes Events of an Application (what ``kubectl describe`` shows under Events:
flows started and finished, rejections, decommissioning), read as the caller."""

from __future__ import annotations

from fastapi import APIRouter, Request
from lightkube.resources.core_v1 import Event
from pydantic import BaseModel, Field

from milkyway.kube.applications import get_application
from milkyway.server.routes.applications import ONE_RESPONSES, Name, Namespace
from milkyway.server.state import Caller, kube_as

router = APIRouter(tags=["applications"])

EVENTS_KEPT = 200
"""The newest Events answered at most (the API server keeps Events about an hour)."""


class ApplicationEvent(BaseModel):
    type: str = Field(description="Normal or Warning")
    reason: str
    message: str
    count: int
    first: str = Field(description="firstTimestamp (RFC 3339), or the event time")
    last: str = Field(description="lastTimestamp (RFC 3339), or the event time")
    source: str = Field(description="the component that reported it")


@router.get(
    "/namespaces/{namespace}/applications/{name}/events",
    response_model=list[ApplicationEvent],
    responses=ONE_RESPONSES,
)
async def application_events(
    namespace: Namespace, name: Name, request: Request, identity: Caller
) -> list[ApplicationEvent]:
    """Events whose involvedObject is the Application, newest first, as the caller (RBAC
    decides: reading them takes ``list`` on ``events`` in the namespace)."""
    client = kube_as(request, identity)
    app = await get_application(client, name, namespace)
    uid = (app.get("metadata") or {}).get("uid")
    found = []
    fields = {"involvedObject.kind": "Application", "involvedObject.name": name}
    async for event in client.list(Event, namespace=namespace, fields=fields):
        involved = event.involvedObject
        if uid and involved.uid and involved.uid != uid:
            continue  # about an earlier Application of the same name
        first = event.firstTimestamp or event.eventTime
        last = event.lastTimestamp or event.eventTime or first
        found.append(
            ApplicationEvent(
                type=event.type or "Normal",
                reason=event.reason or "",
                message=event.message or "",
                count=event.count or 1,
                first=first.isoformat() if first else "",
                last=last.isoformat() if last else "",
                source=(event.source.component if event.source else "") or "",
            )
        )
    found.sort(key=lambda e: e.last, reverse=True)
    return found[:EVENTS_KEPT]
