"""Searching the audit trail and checking its chain."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from milkyway.server.identity import Identity
from milkyway.server.routes.applications import LIST_RESPONSES
from milkyway.server.state import Caller, may, state_of

router = APIRouter(tags=["audit"])
MAX_ROW_ID = 2**63 - 1
"""Row ids are 64-bit integers in both databases; a cursor past them is a field error."""


class AuditVerdict(BaseModel):
    ok: bool
    rows: int
    head: str
    findings: list[dict[str, Any]]


@router.get("/audit", responses=LIST_RESPONSES)
async def search_audit(
    request: Request,
    identity: Caller,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    action: Annotated[str | None, Query(max_length=128)] = None,
    decision: Annotated[str | None, Query(max_length=16)] = None,
    requestId: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=512)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit records in order; ``after`` = the last id seen, to page on. Everyone reads
    their own records; reading everyone's takes ``list`` on ``auditrecords`` in the
    milkyway.ebay.com API group (granted by the milkyway-auditor ClusterRole)."""
    rows = await visible_records(
        request,
        identity,
        actor=actor,
        action=action,
        decision=decision,
        request_id=requestId,
        target=target,
        after_id=after,
        limit=limit,
    )
    return {"items": rows, "next": rows[-1]["id"] if len(rows) == limit else None}


async def visible_records(
    request: Request, identity: Identity, *, actor: str | None = None, **filters: Any
) -> list[dict[str, Any]]:
    """The audit records matching ``filters`` that ``identity`` may read: their own, or
    everyone's with ``list`` on ``auditrecords``."""
    if not await may(request, identity, "list", "auditrecords"):
        actor = identity.name
    return await asyncio.to_thread(state_of(request).audit.search, actor=actor, **filters)
