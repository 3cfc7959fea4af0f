"""An Application's health report: ``status.health`` as the operator's last check wrote
it (per component and zone, with findings and the kept history) and the health-report
runs still kept, read as the caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from milkyway.kube.applications import get_application, list_page
from milkyway.kube.resources import FLOWRUN
from milkyway.operator.health.schedule import HEALTH_LABEL
from milkyway.server.routes.applications import ONE_RESPONSES, Name, Namespace
from milkyway.server.routes.flows import FlowRunSummary, summaries
from milkyway.server.state import Caller, kube_as

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    namespace: str
    application: str
    status: str = Field(description="Healthy, Degraded, Unhealthy or Unknown")
    report: dict[str, Any] = Field(
        description="status.health without its history: checkedAt, since, run, components, "
        "findings (empty before the first check)"
    )
    history: list[dict[str, Any]] = Field(description="past reports kept, newest first")
    runs: list[FlowRunSummary] = Field(description="the health-report runs still kept")


@router.get(
    "/namespaces/{namespace}/applications/{name}/health",
    response_model=HealthReport,
    responses=ONE_RESPONSES,
)
async def application_health(
    namespace: Namespace, name: Name, request: Request, identity: Caller
) -> HealthReport:
    """The last health report of an Application, its history and the runs that checked."""
    client = kube_as(request, identity)
    app = await get_application(client, name, namespace)
    health = dict((app.get("status") or {}).get("health") or {})
    history = list(health.pop("history", None) or [])
    runs, _, _ = await list_page(
        client, FLOWRUN, namespace=namespace, label_selector=f"{HEALTH_LABEL}={name}", limit=100
    )
    return HealthReport(
        namespace=namespace,
        application=name,
        status=str(health.get("status") or "Unknown"),
        report=health,
        history=history,
        runs=summaries(runs),
    )
