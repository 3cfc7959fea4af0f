"""FlowRuns: list, one run as a tree of steps, and the requests ``milkyway flow`` sends
(cancel, retry, pause, resume, approve, reject) — with the caller's proven identity as
the actor, so approvals name who really approved."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from milkyway.flows.engine import add_request, progress
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.applications import list_page
from milkyway.kube.labels import APPLICATION as APP_LABEL
from milkyway.kube.resources import FLOWRUN
from milkyway.server.identity import AUTHENTICATED_GROUP
from milkyway.server.problems import Problem
from milkyway.server.routes.applications import NAME, ONE_RESPONSES, Name, Namespace
from milkyway.server.state import Caller, kube_as, may, state_of

router = APIRouter(tags=["flows"])


class FlowRunSummary(BaseModel):
    name: str
    namespace: str
    flow: str
    target: str
    phase: str
    progress: str
    application: str = ""


@router.get(
    "/namespaces/{namespace}/flowruns",
    response_model=list[FlowRunSummary],
    responses=ONE_RESPONSES,
)
async def list_flowruns(
    namespace: Namespace,
    request: Request,
    identity: Caller,
    application: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[FlowRunSummary]:
    """The runs in a namespace (of one Application with ``application``), oldest first."""
    selector = f"{APP_LABEL}={application}" if application else ""
    items, _, _ = await list_page(
        kube_as(request, identity),
        FLOWRUN,
        namespace=namespace,
        label_selector=selector,
        limit=limit,
    )
    out = []
    for item in sorted(items, key=lambda i: i.get("metadata", {}).get("creationTimestamp") or ""):
        meta, spec, status = (
            item.get("metadata", {}),
            item.get("spec", {}),
            item.get("status") or {},
        )
        out.append(
            FlowRunSummary(
                name=meta.get("name", ""),
                namespace=meta.get("namespace", ""),
                flow=str(spec.get("flow", "")),
                target=str(spec.get("target", "")),
                phase=str(status.get("phase", "Pending")),
                progress=str(status.get("progress", "")),
                application=(meta.get("labels") or {}).get(APP_LABEL, ""),
            )
        )
    return out


@router.get("/namespaces/{namespace}/flowruns/{name}", responses=ONE_RESPONSES)
async def read_flowrun(
    namespace: Namespace, name: Name, request: Request, identity: Caller
) -> dict[str, Any]:
    """One run with its steps as a tree: each node lists its children by path."""
    run = await KubeStore(kube_as(request, identity), namespace).get(name)
    nodes = run.status.nodes
    tree: dict[str, Any] = {}
    for path, node in nodes.items():
        tree[path] = {
            **node.model_dump(mode="json", exclude_none=True),
            "children": sorted(p for p in nodes if p.rpartition(".")[0] == path and p != path),
        }
    roots = sorted(p for p in nodes if "." not in p)
    return {
        "name": name,
        "namespace": namespace,
        "flow": run.spec.flow,
        "target": run.spec.target,
        "phase": run.status.phase,
        "progress": run.status.progress or progress(run.status),
        "message": run.status.message,
        "requestedBy": run.spec.requested_by,
        "params": run.spec.params,
        "roots": roots,
        "nodes": tree,
        "requests": [r.model_dump(mode="json", exclude_none=True) for r in run.spec.requests],
    }


class Steer(BaseModel):
    reason: str = Field(default="", max_length=1024)


class Decide(BaseModel):
    step: str = Field(min_length=1, max_length=253, description="path of the approval step")
    reason: str = Field(default="", max_length=1024)


class Requested(BaseModel):
    message: str


@router.post(
    "/namespaces/{namespace}/flowruns/{name}/{op}",
    response_model=Requested,
    responses={**ONE_RESPONSES, 409: {}},
)
async def steer_flowrun(
    namespace: Namespace,
    name: Name,
    op: Literal["cancel", "retry", "pause", "resume"],
    body: Steer,
    request: Request,
    identity: Caller,
) -> Requested:
    store = KubeStore(kube_as(request, identity), namespace)
    await add_request(store, name, op, identity.name, groups=_groups(identity), reason=body.reason)
    return Requested(message=f"flowrun/{name}: {op} requested")


@router.post(
    "/namespaces/{namespace}/flowruns/{name}/decisions/{decision}",
    response_model=Requested,
    responses={**ONE_RESPONSES, 409: {}, 422: {}},
)
async def decide_flowrun(
    namespace: Namespace,
    name: Name,
    decision: Literal["approve", "reject"],
    body: Decide,
    request: Request,
    identity: Caller,
) -> Requested:
    """Approve or reject an approval step as the signed-in user and their groups.

    The server checks what users cannot forge, then writes the decision with its own
    identity, signed with the decision key: RBAC must grant the caller the ``approve``
    verb on flowruns in the namespace (``milkyway-approver``), and the gate must name the
    caller or one of their groups. Gates an ApprovalPolicy inserted count only such
    signed decisions, so a decision written on the FlowRun directly does not count."""
    store = KubeStore(kube_as(request, identity), namespace)
    run = await store.get(name)
    node = run.status.nodes.get(body.step)
    if node is None or node.kind != "approval":
        gates = [p for p, n in run.status.nodes.items() if n.kind == "approval"]
        raise Problem(
            422,
            f"run {name} has no approval step {body.step!r}; its approvals: "
            f"{', '.join(gates) or 'none'}",
            kind="invalid",
        )
    if not await may(request, identity, "approve", "flowruns", namespace=namespace):
        raise Problem(
            403,
            f"{identity.name} may not decide approvals in namespace {namespace}: ask for "
            "the milkyway-approver ClusterRole there (a RoleBinding)",
            kind="forbidden",
        )
    groups = _groups(identity)
    users, allowed_groups = _approvers(run, node)
    requester = run.spec.requested_by
    if decision == "approve" and identity.name == requester:
        raise Problem(
            403,
            f"{identity.name} requested run {name} and may not approve it; ask one of "
            f"{', '.join([*users, *(f'group:{g}' for g in allowed_groups)])}",
            kind="forbidden",
        )
    named = identity.name in users or bool(set(groups) & set(allowed_groups))
    if not named and not (decision == "reject" and identity.name == requester):
        raise Problem(
            403,
            f"{identity.name} is not an approver of {body.step} in run {name}: it names "
            f"users {users} and groups {allowed_groups}",
            kind="forbidden",
        )
    if node.phase != "Waiting":
        raise Problem(409, f"approval {body.step} of run {name} is {node.phase}, not Waiting")
    if decision == "approve" and any(d.by == identity.name for d in node.approvals or []):
        raise Problem(
            409,
            f"{identity.name} already approved {body.step} of run {name}; an approver counts once",
        )
    state = state_of(request)
    await add_request(
        KubeStore(state.clients.own(), namespace),
        name,
        decision,
        identity.name,
        groups=groups,
        step=body.step,
        reason=body.reason,
        decision_key=await state.decision_key(),
    )
    return Requested(message=f"flowrun/{name}: {decision} of {body.step} requested")


def _approvers(run: Any, node: Any) -> tuple[list[str], list[str]]:
    """Who the gate names: as the engine rendered them when the gate started waiting, or
    as the step is written (plain names) for a gate not started by an engine."""
    if node.params:
        return (
            [str(u) for u in node.params.get("users", [])],
            [str(g) for g in node.params.get("groups", [])],
        )
    for spec in run.status.snapshot.values():
        for step in (*spec.steps, *spec.on_failure, *spec.finally_):
            if step.name == node.name and step.approval is not None:
                plain = [n for n in step.approval.users if "${{" not in n]
                return plain, [g for g in step.approval.groups if "${{" not in g]
    return [], []


def _groups(identity: Any) -> list[str]:
    return [g for g in identity.groups if g != AUTHENTICATED_GROUP]
