"""Change records: every lifecycle flow the operator starts opens a ticket in the ITSM
system before its first step and closes it with the outcome when it ends.

The ITSM webhook is configured by the Secret ``milkyway-system/milkyway-itsm`` (``url``,
``key`` for the HMAC signature, optional ``failurePolicy``: ``block`` or ``warn``). While
it exists, the operator puts a ``change-open`` step after the run's approval gates (so a
rejected change opens nothing, and no step of the flow runs before the ticket is open)
and a ``change-close`` step in the run's ``finally`` section (so it runs however the run
ends). Both live in the run's spec, so an engine that picks the run up after the operator
was killed runs the same steps.

Each call is a JSON POST signed with ``X-Milkyway-Signature: sha256=<HMAC of the body>``
and carrying ``Idempotency-Key: <namespace>/<run>/<uid>/open`` (or ``…/close``): a step run
twice (the engine runs tasks at least once, e.g. across an operator SIGKILL between the
call and the record of its answer) sends the same key, and the ITSM system answers with the
ticket it already made. The ticket id is the ``change-open`` step's output on the FlowRun
and is shown in the Application's ``ChangeRecord`` condition.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret
from pydantic import BaseModel, Field

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, TaskRegistry
from milkyway.kube.resources import FLOWRUN
from milkyway.model.flow import Backoff, RetryPolicy, Step
from milkyway.operator.status_writer import condition

log = logging.getLogger("milkyway.operator.change_records")

SECRET_NAMESPACE = "milkyway-system"
SECRET_NAME = "milkyway-itsm"
OPEN_STEP = "change-open"
CLOSE_STEP = "change-close"
CLOSE_PATH = f"finally.{CLOSE_STEP}"
"""Where the closing step's node is in the run's status (the root flow's ``finally``)."""
SIGNATURE_HEADER = "X-Milkyway-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class ItsmConfig:
    url: str
    key: bytes
    failure_policy: str = "block"
    """``block``: a ticket that cannot be opened fails the run before its first step;
    ``warn``: the run goes on without one (the step's output says why)."""
    timeout: float = 10.0


async def read_config(client: AsyncClient) -> ItsmConfig | None:
    """The ITSM webhook, or ``None`` when no Secret configures one. A Secret that is
    there but unusable raises :class:`ValueError` (the flow is not started without its
    change record)."""
    try:
        secret = await client.get(Secret, SECRET_NAME, namespace=SECRET_NAMESPACE)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise ValueError(
            f"cannot read Secret {SECRET_NAMESPACE}/{SECRET_NAME}: {exc.status.message}"
        ) from None
    return config_from_secret(secret.to_dict())


def config_from_secret(secret: Mapping[str, Any]) -> ItsmConfig:
    """The ITSM webhook the Secret (its plain-dict form) configures; :class:`ValueError`
    naming the field and the fix when it is unusable."""
    data = secret.get("data") or {}
    where = f"Secret {SECRET_NAMESPACE}/{SECRET_NAME}"

    def text(field: str) -> str:
        try:
            return base64.b64decode(data.get(field, ""), validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"{where}: {field} is not base64-encoded UTF-8 text") from None

    url, key = text("url"), text("key")
    policy = text("failurePolicy") or "block"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{where}: url {url!r} is not an http(s) URL; set the webhook's URL")
    if len(key) < 16:
        raise ValueError(f"{where}: key must be at least 16 characters (the HMAC key)")
    if policy not in ("block", "warn"):
        raise ValueError(f"{where}: failurePolicy {policy!r} is not block or warn")
    return ItsmConfig(url=url, key=key.encode(), failure_policy=policy)


def steps(
    *, namespace: str, application: str, flow: str, operation: str, component: str | None
) -> tuple[Step, Step]:
    """The opening gate and the closing ``finally`` step of one run's change record."""
    params: dict[str, Any] = {
        "namespace": namespace,
        "application": application,
        "flow": flow,
        "operation": operation,
        "component": component or "",
    }
    opening = Step(
        name=OPEN_STEP,
        action="milkyway.change-open",
        params=params,
        retry=RetryPolicy(limit=3, backoff=Backoff(duration=1.0, factor=2.0, max_duration=10.0)),
    )
    closing = Step(
        name=CLOSE_STEP,
        action="milkyway.change-close",
        params={**params, "steps": "${{ steps }}"},
        retry=RetryPolicy(limit=20, backoff=Backoff(duration=1.0, factor=2.0, max_duration=60.0)),
    )
    return opening, closing


def signature(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class RecordParams(BaseModel):
    model_config = {"extra": "forbid"}

    namespace: str
    application: str
    flow: str
    operation: str
    component: str = ""
    steps: dict[str, Any] = Field(default_factory=dict)


def outcome(phases: Mapping[str, Any]) -> str:
    """``failed`` when a step of the run failed, ``cancelled`` when one was cancelled,
    else ``succeeded`` (the closing step itself and other ``finally`` steps aside)."""
    seen = {
        str((value or {}).get("phase", "")) for name, value in phases.items() if name != CLOSE_STEP
    }
    if "Failed" in seen:
        return "failed"
    if "Cancelled" in seen:
        return "cancelled"
    return "succeeded"


async def _post(config: ItsmConfig, event: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(config.key, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
    try:
        async with httpx.AsyncClient(timeout=config.timeout, trust_env=False) as http:
            answer = await http.post(config.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise RetryableError(
            f"the ITSM webhook {config.url} could not be reached: {exc or type(exc).__name__}"
        ) from None
    if answer.status_code >= 300:
        raise RetryableError(
            f"the ITSM webhook {config.url} answered {answer.status_code}: {answer.text[:200]}"
        )
    try:
        return dict(answer.json())
    except ValueError:
        raise RetryableError(
            f"the ITSM webhook {config.url} answered {answer.status_code} without a JSON object"
        ) from None


def register(registry: TaskRegistry, client: AsyncClient) -> None:
    """Put ``milkyway.change-open`` and ``milkyway.change-close`` in ``registry``; they read
    the webhook's Secret with the operator's ``client`` at each call."""

    async def config_and_uid(params: RecordParams, ctx: TaskContext) -> tuple[ItsmConfig, str]:
        try:
            config = await read_config(client)
        except ValueError as exc:
            raise FatalError(str(exc)) from None
        if config is None:
            raise FatalError(
                f"no ITSM webhook is configured any more (Secret {SECRET_NAMESPACE}/"
                f"{SECRET_NAME}); the change record of run {ctx.run_id} cannot be kept"
            )
        try:
            run = await client.get(FLOWRUN, ctx.run_id, namespace=params.namespace)
        except ApiError as exc:
            raise RetryableError(f"cannot read run {ctx.run_id}: {exc.status.message}") from None
        return config, str(run.to_dict()["metadata"].get("uid", ""))

    def event(kind: str, params: RecordParams, ctx: TaskContext, uid: str) -> dict[str, Any]:
        return {
            "event": kind,
            "run": ctx.run_id,
            "runUid": uid,
            "namespace": params.namespace,
            "application": params.application,
            "flow": params.flow,
            "operation": params.operation,
            "component": params.component,
        }

    @registry.task("milkyway.change-open", RecordParams)
    async def change_open(params: RecordParams, ctx: TaskContext) -> dict[str, Any]:
        """Open the run's change record in the ITSM system; its ticket id is the output."""
        config, uid = await config_and_uid(params, ctx)
        key = f"{params.namespace}/{ctx.run_id}/{uid}/open"
        try:
            answer = await _post(config, event("open", params, ctx, uid), key)
            ticket = str(answer.get("id") or "")
            if not ticket:
                raise RetryableError(f"the ITSM webhook {config.url} answered without an id")
        except RetryableError as exc:
            if config.failure_policy == "warn":
                log.warning("run %s goes on without a change record: %s", ctx.run_id, exc)
                return {"ticket": "", "warning": f"no change record: {exc}"}
            raise RetryableError(f"the change record could not be opened: {exc}") from None
        log.info("run %s: change record %s opened", ctx.run_id, ticket)
        return {"ticket": ticket}

    @registry.task("milkyway.change-close", RecordParams)
    async def change_close(params: RecordParams, ctx: TaskContext) -> dict[str, Any]:
        """Close the run's change record with the run's outcome (nothing was opened: no-op)."""
        opened = params.steps.get(OPEN_STEP) or {}
        ticket = str((opened.get("outputs") or {}).get("ticket") or "")
        if opened.get("phase") != "Succeeded" or not ticket:
            return {"closed": False}
        config, uid = await config_and_uid(params, ctx)
        result = outcome(params.steps)
        key = f"{params.namespace}/{ctx.run_id}/{uid}/close"
        await _post(
            config, {**event("close", params, ctx, uid), "ticket": ticket, "outcome": result}, key
        )
        log.info("run %s: change record %s closed (%s)", ctx.run_id, ticket, result)
        return {"ticket": ticket, "outcome": result, "closed": True}


def _latest(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest run with a change record."""
    latest: Mapping[str, Any] | None = None
    for run in sorted(runs, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
        nodes = (run.get("status") or {}).get("nodes") or {}
        if OPEN_STEP in nodes:
            latest = run
    return latest


class TicketCache:
    """The ticket and closing outcome of each Application's latest change record. The
    runs the operator watches carry no step outputs (they are decoded lean), so the run
    is read once when its record was opened and once when it was closed."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._known: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}

    async def of(self, key: tuple[str, str], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``{"ticket", "outcome"?}`` of the latest record of ``key``'s runs ({} unknown)."""
        latest = _latest(runs)
        if latest is None:
            self._known.pop(key, None)
            return {}
        name = latest["metadata"]["name"]
        nodes = (latest.get("status") or {}).get("nodes") or {}
        stage = ":".join(
            str((nodes.get(step) or {}).get("phase", "")) for step in (OPEN_STEP, CLOSE_PATH)
        )
        known = self._known.get(key)
        if known is not None and known[:2] == (name, stage):
            return known[2]
        found: dict[str, Any] = {}
        if (nodes.get(OPEN_STEP) or {}).get("phase") == "Succeeded":
            namespace = latest["metadata"].get("namespace", key[0])
            try:
                run = (await self._client.get(FLOWRUN, name, namespace=namespace)).to_dict()
            except ApiError as exc:
                log.warning("cannot read run %s/%s: %s", namespace, name, exc.status.message)
                return {}
            full = (run.get("status") or {}).get("nodes") or {}
            opened = (full.get(OPEN_STEP) or {}).get("outputs") or {}
            closed = (full.get(CLOSE_PATH) or {}).get("outputs") or {}
            found = {k: v for k, v in opened.items() if k in ("ticket", "warning")}
            if closed.get("closed"):
                found["outcome"] = closed.get("outcome", "")
        self._known[key] = (name, stage, found)
        return found


def record_condition(
    runs: Sequence[Mapping[str, Any]],
    generation: int | None = None,
    *,
    tickets: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Application's ``ChangeRecord`` condition, from its latest run with a change
    record (``tickets``: its ticket and outcome, see :class:`TicketCache`): open (with the
    ticket), closed (ticket and outcome), or not opened (why)."""
    latest = _latest(runs)
    tickets = tickets or {}
    if latest is None:
        return condition("ChangeRecord", False, "NoRecord", "", generation)
    name = latest["metadata"]["name"]
    nodes = (latest.get("status") or {}).get("nodes") or {}
    opened = nodes[OPEN_STEP]
    closed = nodes.get(CLOSE_PATH) or {}
    ticket = str(tickets.get("ticket") or "")
    if opened.get("phase") == "Failed":
        return condition(
            "ChangeRecord",
            False,
            "OpenFailed",
            f"{name}: {opened.get('message') or 'the change record could not be opened'}; "
            "no step of the flow ran",
            generation,
        )
    if opened.get("phase") != "Succeeded":
        return condition("ChangeRecord", False, "Opening", f"{name}: opening", generation)
    if not ticket:
        warning = str(tickets.get("warning") or "its ticket id is not known yet")
        return condition("ChangeRecord", False, "NoTicket", f"{name}: {warning}", generation)
    if closed.get("phase") == "Succeeded" and "outcome" in tickets:
        return condition(
            "ChangeRecord",
            False,
            "Closed",
            f"{ticket} of {name} closed: {tickets['outcome']}",
            generation,
        )
    if closed.get("phase") == "Failed":
        return condition(
            "ChangeRecord",
            True,
            "CloseFailed",
            f"{ticket} of {name} could not be closed: {closed.get('message', '')}",
            generation,
        )
    return condition("ChangeRecord", True, "Open", f"{ticket} open for {name}", generation)
