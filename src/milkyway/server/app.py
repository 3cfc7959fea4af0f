"""The FastAPI application: routes under /api/v1, problem-details errors, request ids,
an audit record for every API request, CORS closed unless origins are listed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from milkyway.kube.impersonation import ImpersonatingClients
from milkyway.model.sudo import HEADER as SUDO_HEADER
from milkyway.server import console_files, metrics, problems
from milkyway.server.audit import AuditLog, AuditRecord
from milkyway.server.audit.runs import RunRecorder
from milkyway.server.authn.keystone import KeystoneAuthenticator
from milkyway.server.authn.ldap import LdapAuthenticator
from milkyway.server.authn.ratelimit import LoginLimiter
from milkyway.server.authn.sessions import SessionSigner
from milkyway.server.authn.static_tokens import StaticTokens, secret_loader
from milkyway.server.routes import (
    app_events,
    applications,
    approvals,
    audit,
    auth,
    clusters,
    events,
    flows,
    health,
    notifications,
    session,
    sudo,
)
from milkyway.server.settings import ServerSettings
from milkyway.server.state import ServerState, log
from milkyway.telemetry.logs import LOG_CONTEXT

API_PREFIX = "/api/v1"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_BEARER = re.compile(r"(?i)(bearer\s+|token[=:]\s*|password[=:]\s*)\S+")


class RedactSecrets(logging.Filter):
    """Masks anything that looks like a bearer token or password in a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _BEARER.sub(lambda m: m.group(1) + "[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def build_state(settings: ServerSettings) -> ServerState:
    clients = ImpersonatingClients(settings.kubeconfig, settings.context)
    state = ServerState(
        clients=clients,
        signer=SessionSigner(settings.session_secret, settings.session_ttl_seconds),
        audit=AuditLog(settings.audit_url),
        limiter=LoginLimiter(settings.login_attempts, settings.login_per_seconds),
        page_limit_max=settings.page_limit_max,
    )
    if settings.static_tokens_secret:
        namespace, _, name = settings.static_tokens_secret.partition("/")
        if not namespace or not name:
            raise ValueError(
                f"static tokens Secret {settings.static_tokens_secret!r}: write NAMESPACE/NAME"
            )
        state.tokens.append(StaticTokens(secret_loader(clients.own, namespace, name)))
    if settings.ldap is not None:
        state.passwords.append(LdapAuthenticator(settings.ldap))
    if settings.keystone is not None:
        keystone = KeystoneAuthenticator(settings.keystone)
        state.passwords.append(keystone)
        if settings.keystone_tokens:
            state.tokens.append(keystone)
        state.closers.append(keystone.close)
    return state


def create_app(settings: ServerSettings, state: ServerState | None = None) -> FastAPI:
    """The server for ``settings`` (``state`` given: share clients and audit log, as tests
    and benchmarks do)."""
    for name in ("uvicorn.access", "uvicorn.error", "milkyway.server", "httpx"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = state is None
        app.state.milkyway = state if state is not None else build_state(settings)
        recorder = None
        if settings.record_runs:
            current_state: ServerState = app.state.milkyway
            recorder = asyncio.create_task(
                RunRecorder(current_state.clients.own(), current_state.audit).run(),
                name="audit-runs",
            )
        try:
            yield
        finally:
            if recorder is not None:
                recorder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recorder
            if own:
                current: ServerState = app.state.milkyway
                for close in current.closers:
                    await close()
                await current.clients.close()
                current.audit.close()

    app = FastAPI(
        title="Milkyway",
        version="1",
        description="Provision, change and decommission Milkyway Applications; sign in, "
        "steer flows, read the audit trail.",
        lifespan=lifespan,
    )
    if state is not None:
        app.state.milkyway = state
    problems.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER, SUDO_HEADER],
        )
    for module in (
        auth,
        applications,
        app_events,
        flows,
        approvals,
        sudo,
        health,
        notifications,
        clusters,
        audit,
        events,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(session.router, prefix=API_PREFIX)
    console_files.mount(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request.state.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        too_large = _body_too_large(request)
        started = time.perf_counter()
        token = LOG_CONTEXT.set({**LOG_CONTEXT.get(), "request_id": request.state.request_id})
        try:
            if too_large:
                response = problems.problem_response(request, too_large)
            else:
                response = await call_next(request)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            response = problems.problem_response(
                request, problems.Problem(500, "internal error; the request id names it in the log")
            )
        response.headers[REQUEST_ID_HEADER] = request.state.request_id
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.url.path.startswith(API_PREFIX):
            await _audit(request, response)
        route: Any = request.scope.get("route")
        metrics.observe_request(
            request.method,
            getattr(route, "name", "") or "(no route)",
            response.status_code,
            time.perf_counter() - started,
        )
        LOG_CONTEXT.reset(token)
        return response

    return app


MAX_BODY_BYTES = 1024 * 1024


def _body_too_large(request: Request) -> problems.Problem | None:
    """Bodies are refused before they are read: past ``MAX_BODY_BYTES``, or of unknown
    length (chunked), since no Application manifest needs either."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    length = request.headers.get("content-length")
    if length is None:
        if request.headers.get("transfer-encoding"):
            return problems.Problem(411, "send the body with a Content-Length", kind="length")
        return None
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return problems.Problem(
            413,
            f"the body has {length} bytes; the limit is {MAX_BODY_BYTES}",
            kind="too-large",
        )
    return None


def _decision(status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403:
        return "denied"
    if status >= 500:
        return "error"
    return "allowed"


async def _audit(request: Request, response: Response) -> None:
    state: ServerState = request.app.state.milkyway
    identity = getattr(request.state, "identity", None)
    route: Any = request.scope.get("route")
    record = AuditRecord(
        request_id=request.state.request_id,
        actor=identity.name if identity else str(getattr(request.state, "actor", "")),
        groups=list(identity.groups) if identity else [],
        auth_method=identity.method if identity else "",
        source=request.client.host if request.client else "",
        action=getattr(route, "name", "") or f"{request.method} (no route)",
        target=f"{request.method} {request.url.path}",
        decision=_decision(response.status_code),
        result=response.status_code,
        detail="; ".join(
            str(d)
            for d in (
                getattr(request.state, "sudo_detail", ""),
                getattr(request.state, "audit_detail", ""),
            )
            if d
        ),
    )
    try:
        await state.audit.append(record)
    except Exception:
        log.exception("audit append failed for request %s", record.request_id)
