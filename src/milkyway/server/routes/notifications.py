"""Notification deliveries of a namespace, read as the caller: each is a FlowRun of
``milkyway-notify``, shown as ``milkyway notifications`` shows it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from milkyway.kube.applications import list_page
from milkyway.kube.resources import FLOWRUN
from milkyway.notify.center import NOTIFICATION_LABEL
from milkyway.notify.deliveries import delivery_rows
from milkyway.server.routes.applications import NAME, ONE_RESPONSES, Namespace
from milkyway.server.state import Caller, kube_as

router = APIRouter(tags=["notifications"])


class Delivery(BaseModel):
    name: str
    namespace: str
    application: str
    trigger: str
    service: str
    recipients: str
    status: str
    attempts: str
    detail: str
    age: str


@router.get(
    "/namespaces/{namespace}/notifications",
    response_model=list[Delivery],
    responses=ONE_RESPONSES,
)
async def list_deliveries(
    namespace: Namespace,
    request: Request,
    identity: Caller,
    application: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[Delivery]:
    """Deliveries (email, Slack, webhooks) with their status: Sent, Sending, Retrying
    (with the last error), Failed, Pending; of one Application with ``application``."""
    selector = f"{NOTIFICATION_LABEL}={application}" if application else NOTIFICATION_LABEL
    runs, _, _ = await list_page(
        kube_as(request, identity),
        FLOWRUN,
        namespace=namespace,
        label_selector=selector,
        limit=limit,
    )
    return [Delivery(**row) for row in delivery_rows(runs)]
