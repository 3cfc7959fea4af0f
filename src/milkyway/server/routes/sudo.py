"""``milkyway sudo``: ask for a Milkyway role in one namespace for a while, with a reason;
see where the request stands; and (in :func:`use_of`) let a call use an approved grant.

The server creates the ``milkyway-sudo`` FlowRun with its own account, behind one
approval gate per ApprovalPolicy covering ``sudo`` in the namespace, requested by the
caller (so the caller cannot approve it), and signs the request and its gates; the
operator creates the expiring RoleBinding once the gates passed (see
:mod:`milkyway.model.sudo`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from lightkube.core.exceptions import ApiError
from lightkube.operators import exists
from lightkube.resources.rbac_authorization_v1 import RoleBinding
from pydantic import BaseModel, Field

from milkyway.flows.dsl import Catalog, FlowError
from milkyway.flows.engine import new_run
from milkyway.kube.resources import FLOWRUN
from milkyway.model import sudo
from milkyway.model.approval_policy import parse_duration, required_approvals, sudo_limit
from milkyway.operator.approval_gates import gate_step, read_policies
from milkyway.operator.flows_catalog import operator_flows
from milkyway.server.identity import Identity
from milkyway.server.problems import Problem
from milkyway.server.routes.applications import ONE_RESPONSES, Namespace
from milkyway.server.state import Caller, may, state_of

ASKED_AT = "milkyway.ebay.com/asked-at"
"""When a sudo request was made, to the microsecond: requests made within one second
(``creationTimestamp``'s resolution) are still listed in the order they were made."""

router = APIRouter(tags=["sudo"])


class SudoRequest(BaseModel):
    role: str = Field(description="one of " + ", ".join(sudo.SUDO_ROLES))
    duration: str = Field(description="how long, like 30m or 1h (at most what policy allows)")
    reason: str = Field(min_length=3, max_length=1024, description="why, e.g. INC-123")


class SudoState(BaseModel):
    grant: str
    namespace: str
    role: str
    run: str
    state: str
    """``Waiting`` (for approval), ``Granted``, ``Expired``, ``Refused``."""
    message: str
    expires: str = ""


def _run_name(grant: str) -> str:
    return f"milkyway-sudo-{grant}"


@router.post(
    "/namespaces/{namespace}/sudo",
    status_code=202,
    response_model=SudoState,
    responses={**ONE_RESPONSES, 422: {}, 503: {}},
)
async def request_sudo(
    namespace: Namespace, body: SudoRequest, request: Request, identity: Caller
) -> SudoState:
    """Ask for ``role`` in ``namespace`` for ``duration``: it is granted once the approvals
    the ApprovalPolicies covering ``sudo`` there ask for are given."""
    if body.role not in sudo.SUDO_ROLES:
        raise Problem(
            422,
            f"role {body.role!r} may not be granted by sudo; ask for one of "
            + ", ".join(sudo.SUDO_ROLES),
            kind="invalid",
        )
    try:
        seconds = int(parse_duration(body.duration))
    except ValueError as exc:
        raise Problem(422, f"duration: {exc}", kind="invalid") from None
    state = state_of(request)
    own = state.clients.own()
    try:
        policies = await read_policies(own, namespace)
    except FlowError as exc:
        raise Problem(503, f"sudo cannot be decided now: {exc}", kind="unavailable") from None
    limit = sudo_limit(policies, namespace)
    if limit is None:
        raise Problem(
            403,
            f"no ApprovalPolicy covers sudo in namespace {namespace}, so nobody may approve "
            "an elevation there; an administrator must create one with match.operations: "
            "[sudo] and approvals",
            kind="forbidden",
        )
    if seconds > limit:
        raise Problem(
            422,
            f"duration {body.duration} is longer than the ApprovalPolicies covering sudo in "
            f"{namespace} allow ({int(limit)}s); ask for at most that",
            kind="invalid",
        )
    now = dt.datetime.now(dt.UTC)
    requirement = required_approvals(
        policies,
        operation="sudo",
        flow=sudo.FLOW,
        namespace=namespace,
        component_type="",
        labels={},
        now=now,
    )
    if not requirement.gates:
        raise Problem(
            403,
            f"the policies covering sudo in {namespace} are inside their autoApproveIn "
            f"window ({', '.join(requirement.auto_approved)}); an elevation always needs a "
            "person's approval: ask again outside the window",
            kind="forbidden",
        )
    gates = [gate_step(g) for g in requirement.gates]
    gate_docs = [g.model_dump(mode="json", by_alias=True, exclude_none=True) for g in gates]
    grant = secrets.token_hex(4)
    name = _run_name(grant)
    key = await state.decision_key()
    params: dict[str, Any] = {
        "namespace": namespace,
        "grant": grant,
        "role": body.role,
        "user": identity.name,
        "seconds": seconds,
        "reason": body.reason,
        "proof": sudo.proof(
            key,
            namespace=namespace,
            run=name,
            grant=grant,
            role=body.role,
            user=identity.name,
            seconds=seconds,
            gates=gate_docs,
        ),
    }
    run = new_run(
        Catalog(operator_flows()),
        None,
        sudo.FLOW,
        params,
        target=f"{namespace}/{body.role}",
        requested_by=identity.name,
        name=name,
        namespace=namespace,
        labels={sudo.GRANT_LABEL: grant},
        gates=gates,
    )
    data = run.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("status", None)
    data["metadata"] = run.metadata.to_wire()
    data["metadata"]["namespace"] = namespace
    data["metadata"].setdefault("annotations", {})[ASKED_AT] = dt.datetime.now(dt.UTC).isoformat(
        timespec="microseconds"
    )
    # The server's own account creates it: users need no right on FlowRuns to ask, and
    # the engine that picks the run up builds its gates from this spec.
    await own.create(FLOWRUN.from_dict(data), namespace=namespace)
    request.state.audit_detail = (
        f"sudo request {namespace}/{grant}: {body.role} for {body.duration}: {body.reason}"
    )
    waits = "; ".join(g.approval.message for g in gates if g.approval is not None)
    return SudoState(
        grant=grant,
        namespace=namespace,
        role=body.role,
        run=name,
        state="Waiting",
        message=f"waiting for approval of run {name}: {waits}",
    )


@router.get("/namespaces/{namespace}/sudo", response_model=list[SudoState], responses=ONE_RESPONSES)
async def my_sudo_requests(
    namespace: Namespace, request: Request, identity: Caller
) -> list[SudoState]:
    """The caller's own sudo requests in ``namespace`` and where each stands, oldest first
    (the runs are the server's: they are read with its account and kept to the caller's)."""
    own = state_of(request).clients.own()
    runs = [
        run.to_dict()
        async for run in own.list(FLOWRUN, namespace=namespace, labels={sudo.GRANT_LABEL: exists()})
    ]
    mine = [r for r in runs if (r.get("spec") or {}).get("requestedBy") == identity.name]
    mine.sort(
        key=lambda r: (
            (r.get("metadata") or {}).get("creationTimestamp") or "",
            ((r.get("metadata") or {}).get("annotations") or {}).get(ASKED_AT) or "",
        )
    )
    return [
        await _state(request, namespace, r["metadata"]["labels"][sudo.GRANT_LABEL], r) for r in mine
    ]


Grant = Annotated[str, Path(min_length=6, max_length=16, pattern=r"^[a-z0-9]+$")]


@router.get(
    "/namespaces/{namespace}/sudo/{grant}", response_model=SudoState, responses=ONE_RESPONSES
)
async def sudo_status(
    namespace: Namespace, grant: Grant, request: Request, identity: Caller
) -> SudoState:
    """Where a request stands: waiting (for whom), granted (until when), refused, expired."""
    own = state_of(request).clients.own()
    name = _run_name(grant)
    try:
        run = (await own.get(FLOWRUN, name, namespace=namespace)).to_dict()
    except ApiError as exc:
        if exc.status.code == 404:
            raise Problem(404, f"no sudo request {namespace}/{grant}", kind="not-found") from None
        raise
    spec = run.get("spec") or {}
    if spec.get("requestedBy") != identity.name and not await may(
        request, identity, "get", "flowruns", namespace=namespace
    ):
        raise Problem(
            403, f"sudo request {namespace}/{grant} is not yours to read", kind="forbidden"
        )
    return await _state(request, namespace, grant, run)


async def _state(request: Request, namespace: str, grant: str, run: dict[str, Any]) -> SudoState:
    """Where the request ``run`` stands, from the run and the grant's RoleBinding."""
    name = _run_name(grant)
    spec = run.get("spec") or {}
    role = str((spec.get("params") or {}).get("role", ""))
    found = await _binding(request, namespace, grant)
    status = run.get("status") or {}
    base = {"grant": grant, "namespace": namespace, "role": role, "run": name}
    if found is not None:
        until = sudo.expires_at(found)
        expires = sudo.rfc3339(until) if until else ""
        if sudo.expired(found, dt.datetime.now(dt.UTC)):
            return SudoState(**base, state="Expired", message=f"expired at {expires}")
        return SudoState(
            **base,
            state="Granted",
            message=f"{role} in {namespace} until {expires}: send {sudo.HEADER}: "
            f"{namespace}/{grant} with your calls",
            expires=expires,
        )
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return SudoState(**base, state="Expired", message="granted, expired and removed")
    if phase in ("Failed", "Cancelled"):
        why = [
            f"{path}: {node.get('message', '')}"
            for path, node in sorted((status.get("nodes") or {}).items())
            if node.get("phase") == "Failed"
        ]
        return SudoState(**base, state="Refused", message="; ".join(why) or phase)
    waiting = [
        f"{path}: {node.get('message', '')}"
        for path, node in sorted((status.get("nodes") or {}).items())
        if node.get("kind") == "approval" and node.get("phase") == "Waiting"
    ]
    return SudoState(
        **base, state="Waiting", message="; ".join(waiting) or "waiting for the operator"
    )


async def _binding(request: Request, namespace: str, grant: str) -> dict[str, Any] | None:
    own = state_of(request).clients.own()
    try:
        found = await own.get(RoleBinding, sudo.binding_name(grant), namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    data = found.to_dict()
    labels = (data.get("metadata") or {}).get("labels") or {}
    return data if labels.get(sudo.GRANT_LABEL) == grant else None


async def use_of(request: Request, identity: Identity, header: str) -> Identity:
    """``identity`` elevated by the grant ``header`` names (``NAMESPACE/GRANT``): with the
    grant's group, which its RoleBinding binds, for this call only; 403 unless the grant
    is in force and the caller's. The audit record names the grant."""
    namespace, _, grant = header.strip().partition("/")
    if not namespace or not sudo.valid_grant_id(grant):
        raise Problem(
            400, f"{sudo.HEADER} {header!r}: send NAMESPACE/GRANT as milkyway sudo printed it"
        )
    found = await _binding(request, namespace, grant)
    try:
        use = sudo.check_use(
            found,
            user=identity.name,
            namespace=namespace,
            grant=grant,
            now=dt.datetime.now(dt.UTC),
        )
    except sudo.Refused as exc:
        request.state.sudo_detail = f"sudo grant {namespace}/{grant} refused: {exc}"
        raise Problem(403, str(exc), kind="forbidden") from None
    request.state.sudo_detail = use.describe()
    return Identity(
        name=identity.name,
        groups=(*identity.groups, use.group),
        method=f"{identity.method}+sudo",
    )
