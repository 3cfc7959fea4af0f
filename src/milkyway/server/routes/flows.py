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
from milkyway.security.change_stamp import REQUEST_ID
from milkyway.server.identity import AUTHENTICATED_GROUP
from milkyway.server.problems import Problem
from milkyway.server.routes.applications import NAME, ONE_RESPONSES, Name, Namespace
from milkyway.server.routes.audit import visible_records
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
    requestId: str = Field(
        default="", description="the server request whose change caused the run, if any"
    )


REQUEST_SCAN_PAGES = 20
"""Pages of 500 runs read at most when looking for the runs of one request id."""


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
    requestId: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[FlowRunSummary]:
    """The runs in a namespace (of one Application with ``application``; caused by one
    server request with ``requestId``, as an audit record names it), oldest first."""
    selector = f"{APP_LABEL}={application}" if application else ""
    client = kube_as(request, identity)
    if requestId:
        items = [
            item
            for item in await _all_runs(client, namespace, selector)
            if _request_of(item) == requestId
        ][:limit]
    else:
        items, _, _ = await list_page(
            client, FLOWRUN, namespace=namespace, label_selector=selector, limit=limit
        )
    return summaries(items)


def summaries(items: list[dict[str, Any]]) -> list[FlowRunSummary]:
    """FlowRuns as listed, oldest first."""
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
                requestId=_request_of(item),
            )
        )
    return out


def _request_of(item: dict[str, Any]) -> str:
    return str(((item.get("metadata") or {}).get("annotations") or {}).get(REQUEST_ID, ""))


async def _all_runs(client: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    for _ in range(REQUEST_SCAN_PAGES):
        page, token, _ = await list_page(
            client,
            FLOWRUN,
            namespace=namespace,
            label_selector=selector,
            limit=500,
            continue_token=token,
        )
        items.extend(page)
        if not token:
            break
    return items


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
        "requestId": run.metadata.annotations.get(REQUEST_ID, ""),
        "message": run.status.message,
        "requestedBy": run.spec.requested_by,
        "params": run.spec.params,
        "roots": roots,
        "nodes": tree,
        "requests": [r.model_dump(mode="json", exclude_none=True) for r in run.spec.requests],
    }


class Attempt(BaseModel):
    n: int
    phase: str
    startedAt: float
    finishedAt: float | None = None
    error: str | None = None
    message: str = ""
    actor: str = ""


class StepLog(BaseModel):
    path: str
    name: str
    kind: str
    phase: str
    message: str = ""
    startedAt: float | None = None
    finishedAt: float | None = None
    attempts: list[Attempt] = []
    olderAttempts: int = Field(0, description="attempts dropped to bound the run's size")


class RunLog(BaseModel):
    name: str
    phase: str
    message: str
    steps: list[StepLog]


@router.get(
    "/namespaces/{namespace}/flowruns/{name}/logs",
    response_model=RunLog,
    responses={**ONE_RESPONSES, 422: {}},
)
async def flowrun_logs(
    namespace: Namespace,
    name: Name,
    request: Request,
    identity: Caller,
    step: Annotated[str | None, Query(min_length=1, max_length=253)] = None,
) -> RunLog:
    """What each step said: its message and every attempt kept (who ran it, when, how it
    ended, the error), in the order the steps started; ``step`` keeps one step and the
    steps under it."""
    run = await KubeStore(kube_as(request, identity), namespace).get(name)
    nodes = run.status.nodes
    if step is not None and step not in nodes:
        raise Problem(
            422,
            f"run {name} has no step {step!r}; its steps: {', '.join(sorted(nodes)) or 'none'}",
            kind="invalid",
        )
    chosen = [
        node
        for path, node in nodes.items()
        if step is None or path == step or path.startswith(f"{step}.")
    ]
    chosen.sort(key=lambda n: (n.started_at is None, n.started_at or 0.0, n.path))
    return RunLog(
        name=name,
        phase=run.status.phase,
        message=run.status.message,
        steps=[
            StepLog(
                path=node.path,
                name=node.name,
                kind=node.kind,
                phase=node.phase,
                message=node.message,
                startedAt=node.started_at,
                finishedAt=node.finished_at,
                attempts=[
                    Attempt(
                        n=a.n,
                        phase=a.phase,
                        startedAt=a.started_at,
                        finishedAt=a.finished_at,
                        error=str(a.error) if a.error else None,
                        message=a.message,
                        actor=a.actor,
                    )
                    for a in node.attempts
                ],
                olderAttempts=node.compacted,
            )
            for node in chosen
        ],
    )


@router.get("/namespaces/{namespace}/flowruns/{name}/audit", responses=ONE_RESPONSES)
async def flowrun_audit(
    namespace: Namespace, name: Name, request: Request, identity: Caller
) -> dict[str, Any]:
    """The audit records of the server request whose change caused the run (none for a
    run the server did not cause), as far as the caller may read them (see ``/audit``)."""
    run = await KubeStore(kube_as(request, identity), namespace).get(name)
    request_id = run.metadata.annotations.get(REQUEST_ID, "")
    rows = (
        await visible_records(request, identity, request_id=request_id, limit=1000)
        if request_id
        else []
    )
    return {"requestId": request_id, "items": rows}


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
