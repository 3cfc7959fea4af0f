"""The member clusters registered on the management cluster (``Cluster`` resources)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from milkyway.kube.applications import list_page
from milkyway.kube.resources import CLUSTER
from milkyway.server.routes.applications import LIST_RESPONSES
from milkyway.server.state import Caller, kube_as

router = APIRouter(tags=["clusters"])


class ClusterSummary(BaseModel):
    name: str
    region: str = ""
    zone: str = ""
    conditions: list[dict[str, Any]] = []
    reachable: bool | None = None
    """Whether the operator's last heartbeat reached the cluster (None: not checked yet)."""
    version: str = ""
    """The Kubernetes version the cluster reported."""
    lastHeartbeatTime: str = ""
    nodes: dict[str, int] | None = None
    """``ready`` and ``total`` Nodes as the operator last saw them (None: not listed yet)."""


@router.get("/clusters", response_model=list[ClusterSummary], responses=LIST_RESPONSES)
async def list_clusters(request: Request, identity: Caller) -> list[ClusterSummary]:
    items, _, _ = await list_page(kube_as(request, identity), CLUSTER, namespace=None, limit=500)
    out = []
    for item in items:
        spec = item.get("spec") or {}
        status = item.get("status") or {}
        out.append(
            ClusterSummary(
                name=item.get("metadata", {}).get("name", ""),
                region=str(spec.get("region", "")),
                zone=str(spec.get("zone", "")),
                conditions=list(status.get("conditions") or []),
                reachable=status.get("reachable"),
                version=str(status.get("version") or ""),
                lastHeartbeatTime=str(status.get("lastHeartbeatTime") or ""),
                nodes=status.get("nodes"),
            )
        )
    return out
