"""The approval gates of a flow the operator is about to start: the ApprovalPolicies of
the Application's namespace and the cluster-wide ones (``milkyway-system``) are read
live, :func:`~milkyway.model.approval_policy.required_approvals` says which apply, and
each becomes an approval step the run passes before any step of the flow.

A policy that cannot be read or is invalid stops the flow from starting (the operator
records why and tries again): a change that might need an approval never goes ahead
without one because a policy was unreadable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from milkyway.flows.dsl import FlowError
from milkyway.kube.resources import APPROVAL_POLICY
from milkyway.model.approval_policy import (
    CLUSTER_NAMESPACE,
    ApprovalPolicy,
    Gate,
    Hold,
    Requirement,
    required_approvals,
    start_hold,
)
from milkyway.model.flow import Approval, Step
from milkyway.model.resolve import infer_type
from milkyway.operator.status_writer import condition

GATE_PREFIX = "approval-"


def gate_step(gate: Gate) -> Step:
    """The approval step of one policy's gate (decisions only through the server)."""
    name = GATE_PREFIX + gate.policy.rpartition("/")[2]
    message = gate.message or (
        f"ApprovalPolicy {gate.policy} asks for {gate.required} approval(s) from "
        + ", ".join([*gate.users, *(f"group:{g}" for g in gate.groups)])
        + f"; on timeout: {gate.default}"
    )
    return Step(
        name=name[:63].rstrip("-"),
        approval=Approval(
            users=list(gate.users),
            groups=list(gate.groups),
            timeout=gate.timeout,
            default=gate.default,  # type: ignore[arg-type]
            message=message,
            required=gate.required,
            proof=True,
            policy=gate.policy,
        ),
    )


def component_type_of(app: Mapping[str, Any], component: str | None, types: Any) -> str:
    """The type name of ``component`` in the Application (declared or inferred)."""
    for entry in (app.get("spec") or {}).get("components") or []:
        if entry.get("name") == component:
            return str(entry.get("type") or infer_type(component or "", types) or "")
    return ""


async def read_policies(client: AsyncClient, namespace: str) -> list[ApprovalPolicy]:
    """The policies of ``namespace`` and the cluster-wide ones, validated."""
    found: list[ApprovalPolicy] = []
    for where in dict.fromkeys((CLUSTER_NAMESPACE, namespace)):
        try:
            items = [item async for item in client.list(APPROVAL_POLICY, namespace=where)]
        except ApiError as exc:
            raise FlowError(
                f"cannot read the ApprovalPolicies of {where}: {exc.status.message}; the flow "
                "starts once they can be read"
            ) from None
        for item in items:
            found.append(validated_policy(item.to_dict() if hasattr(item, "to_dict") else item))
    return found


def validated_policy(raw: Mapping[str, Any]) -> ApprovalPolicy:
    """One ApprovalPolicy resource (plain dict) as the model; :class:`FlowError` naming
    the policy, the field and the fix when it is invalid."""
    try:
        return ApprovalPolicy.model_validate(raw)
    except ValidationError as exc:
        metadata = raw.get("metadata") or {}
        where = f"{metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
        first = exc.errors()[0]
        raise FlowError(
            f"ApprovalPolicy {where} is invalid at "
            f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}; fix it, "
            "the flow starts then"
        ) from None


PolicyReader = Callable[[str], Awaitable[list[ApprovalPolicy]]]
"""Reads the policies that apply in a namespace (its own and the cluster-wide ones)."""


@dataclass(frozen=True)
class Admission:
    """What the policies say about starting one flow now."""

    gates: list[Step]
    requirement: Requirement
    hold: Hold | None
    """Set: the flow may not start before ``hold.until`` (a window, a freeze)."""


async def admit(
    client: AsyncClient,
    app: Mapping[str, Any],
    *,
    operation: str,
    flow: str,
    component: str | None,
    types: Any,
    now: datetime,
    policies_of: PolicyReader | None = None,
) -> Admission:
    """The gate steps for this flow of ``app``, or the hold that keeps it from starting.
    The policies are read with ``policies_of`` (e.g. from a watch), else live."""
    metadata = app.get("metadata") or {}
    namespace = metadata.get("namespace", "")
    if policies_of is not None:
        policies = await policies_of(namespace)
    else:
        policies = await read_policies(client, namespace)
    facts: dict[str, Any] = {
        "operation": operation,
        "flow": flow,
        "namespace": namespace,
        "component_type": component_type_of(app, component, types),
        "labels": metadata.get("labels") or {},
        "now": now,
    }
    requirement = required_approvals(policies, **facts)
    hold = start_hold(policies, **facts, application=f"{namespace}/{metadata.get('name', '')}")
    return Admission([gate_step(g) for g in requirement.gates], requirement, hold)


def hold_condition(
    held: Sequence[tuple[str, Hold]], generation: int | None = None
) -> dict[str, Any]:
    """The Application's ``MaintenanceWindow`` condition: which flows wait and until when."""
    held = [(w, h) for w, h in held if h.kind == "window"]
    if not held:
        return condition("MaintenanceWindow", False, "NotHeld", "", generation)
    message = "; ".join(
        f"{what} waits until {h.until.strftime('%Y-%m-%dT%H:%M:%SZ')}: {', '.join(h.reasons)}"
        for what, h in held
    )
    return condition("MaintenanceWindow", True, "WaitingForWindow", message, generation)


def approval_condition(
    runs: Sequence[Mapping[str, Any]], generation: int | None = None
) -> dict[str, Any]:
    """The Application's ``ApprovalPending`` condition: which unfinished run waits at
    which gate, for how many more approvals, from whom and until when (its timeout)."""
    waiting: list[str] = []
    for run in sorted(runs, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
        status = run.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
            continue
        timers = status.get("timers") or {}
        for path, node in sorted((status.get("nodes") or {}).items()):
            if node.get("kind") != "approval" or node.get("phase") != "Waiting":
                continue
            until = timers.get(f"{path}#approval")
            deadline = f" (until {_rfc3339(until)})" if until else ""
            waiting.append(
                f"{run['metadata']['name']} waits at {path}{deadline}: {node.get('message', '')}"
            )
    if waiting:
        return condition(
            "ApprovalPending", True, "WaitingForApproval", "; ".join(waiting), generation
        )
    return condition("ApprovalPending", False, "NoneWaiting", "", generation)


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CHANGE_LABEL = "milkyway.ebay.com/change"
"""On the runs the operator starts: the digest of what the Application asked for."""
REJECTION_RECHECK = 3600.0


def rejected_before(
    runs: Sequence[Mapping[str, Any]],
    *,
    flow: str,
    component: str | None,
    change: str,
    now: datetime,
) -> Hold | None:
    """A hold while the same flow for the same component was rejected by a person at an
    approval gate for this very change: it is asked for again once the Application
    changes (a timeout's default rejection does not hold: it is asked for again)."""
    for run in runs:
        metadata = run.get("metadata") or {}
        labels = metadata.get("labels") or {}
        status = run.get("status") or {}
        if (
            status.get("phase") != "Failed"
            or (run.get("spec") or {}).get("flow") != flow
            or labels.get(CHANGE_LABEL) != change
            or labels.get("milkyway.ebay.com/component") != component
        ):
            continue
        for path, node in sorted((status.get("nodes") or {}).items()):
            decision = node.get("decision") or {}
            by = str(decision.get("by") or "")
            if node.get("kind") == "approval" and decision.get("approved") is False and by:
                if by.startswith("system:"):
                    continue
                why = f": {decision['reason']}" if decision.get("reason") else ""
                return Hold(
                    now + timedelta(seconds=REJECTION_RECHECK),
                    (
                        f"{metadata.get('name')} was rejected by {by} at {path}{why}; "
                        "change the Application to ask again",
                    ),
                    kind="rejected",
                )
    return None


def rejection_condition(
    held: Sequence[tuple[str, Hold]], generation: int | None = None
) -> dict[str, Any]:
    """The Application's ``ApprovalRejected`` condition: flows not asked for again."""
    rejected = [(w, h) for w, h in held if h.kind == "rejected"]
    if not rejected:
        return condition("ApprovalRejected", False, "NoneRejected", "", generation)
    message = "; ".join(f"{w}: {', '.join(h.reasons)}" for w, h in rejected)
    return condition("ApprovalRejected", True, "Rejected", message, generation)
