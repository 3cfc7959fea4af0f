"""Lifting a maintenance window or change freeze for one Application: someone in the
policy's ``overrideGroups`` with the ``approve`` right in the namespace asks, with a
reason; the server records the override in the policy's status with its own account
(users cannot write ``approvalpolicies/status``) and the reason in the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from lightkube.core.exceptions import ApiError
from pydantic import BaseModel, Field, ValidationError

from milkyway.kube.resources import APPROVAL_POLICY
from milkyway.model.approval_policy import (
    CLUSTER_NAMESPACE,
    ApprovalPolicy,
    WindowOverride,
    parse_duration,
)
from milkyway.server.problems import Problem
from milkyway.server.routes.applications import ONE_RESPONSES, Name, Namespace
from milkyway.server.routes.flows import _groups
from milkyway.server.state import Caller, kube_as, may, state_of

router = APIRouter(tags=["approvals"])

LONGEST_OVERRIDE = 24 * 3600.0


class OverrideRequest(BaseModel):
    policy: str = Field(
        min_length=3, max_length=253, description="namespace/name of the ApprovalPolicy"
    )
    reason: str = Field(min_length=3, max_length=1024)
    duration: str = Field(default="1h", description="how long, like 30m or 2h (at most 24h)")


class Overridden(BaseModel):
    message: str
    until: str


@router.post(
    "/namespaces/{namespace}/applications/{name}/window-override",
    response_model=Overridden,
    responses={**ONE_RESPONSES, 422: {}},
)
async def override_window(
    namespace: Namespace, name: Name, body: OverrideRequest, request: Request, identity: Caller
) -> Overridden:
    """Let the Application's held flows start despite the policy's window or freeze."""
    try:
        seconds = parse_duration(body.duration)
    except ValueError as exc:
        raise Problem(422, f"duration: {exc}", kind="invalid") from None
    if seconds > LONGEST_OVERRIDE:
        raise Problem(422, f"duration {body.duration} is longer than 24h; ask again later")
    home, _, policy_name = body.policy.partition("/")
    if home not in (namespace, CLUSTER_NAMESPACE) or not policy_name:
        raise Problem(
            422,
            f"policy {body.policy!r}: name one of {namespace}/NAME or {CLUSTER_NAMESPACE}/NAME",
            kind="invalid",
        )
    # The caller must see the Application (404/403 as the cluster answers them).
    from milkyway.kube.applications import get_application

    await get_application(kube_as(request, identity), name, namespace)
    if not await may(request, identity, "approve", "flowruns", namespace=namespace):
        raise Problem(
            403,
            f"{identity.name} may not override windows in namespace {namespace}: ask for "
            "the milkyway-approver ClusterRole there",
            kind="forbidden",
        )
    state = state_of(request)
    own = state.clients.own()
    for _ in range(10):
        try:
            raw = await own.get(APPROVAL_POLICY, policy_name, namespace=home)
        except ApiError as exc:
            if exc.status.code == 404:
                raise Problem(404, f"no ApprovalPolicy {body.policy}", kind="not-found") from None
            raise
        data: dict[str, Any] = raw.to_dict()
        try:
            policy = ApprovalPolicy.model_validate(data)
        except ValidationError as exc:
            raise Problem(
                422,
                f"ApprovalPolicy {body.policy} is invalid ({exc.errors()[0]['msg']}); fix it first",
                kind="invalid",
            ) from None
        covered = home == namespace or not policy.spec.match.namespaces
        if not covered and namespace not in policy.spec.match.namespaces:
            raise Problem(422, f"{body.policy} does not apply to namespace {namespace}")
        allowed = set(policy.spec.override_groups)
        if not allowed & set(_groups(identity)):
            raise Problem(
                403,
                f"{identity.name} is in none of the overrideGroups of {body.policy} "
                f"({sorted(allowed) or 'none named'})",
                kind="forbidden",
            )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        until = now + dt.timedelta(seconds=seconds)
        entry = WindowOverride(
            application=f"{namespace}/{name}",
            by=identity.name,
            reason=body.reason,
            at=now,
            until=until,
        )
        kept = [o for o in policy.status.overrides if o.until > now]
        data["status"] = {
            "overrides": [o.model_dump(mode="json", by_alias=True) for o in [*kept, entry]]
        }
        try:
            await own.replace(APPROVAL_POLICY.Status.from_dict(data), policy_name, namespace=home)
        except ApiError as exc:
            if exc.status.code == 409:
                continue
            raise
        stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
        request.state.audit_detail = (
            f"override of {body.policy} for {namespace}/{name} until {stamp}: {body.reason}"
        )
        return Overridden(
            message=f"{body.policy}: windows and freezes lifted for {namespace}/{name}",
            until=stamp,
        )
    raise Problem(409, f"ApprovalPolicy {body.policy} kept changing; try again")
