"""The agent's HTTP API.

``/healthz`` is the agent's own liveness (it answers while the data system is down);
``/v1/status`` the member's health with every finding; ``/metrics`` Prometheus text;
``/v1/logs`` the declared log files; ``POST /v1/actions/{name}`` a declared action, for
holders of an operator-signed token only. Every refusal is a JSON problem with a reason.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from milkyway.agent.logs import LogAccessError, follow, list_files, parse_since, resolve, tail
from milkyway.agent.service import AgentService
from milkyway.kube.agent_contract import AGENT_TOKEN_HEADER
from milkyway.security.agent_tokens import TokenRejected

SERVICE_KEY = web.AppKey("service", AgentService)
TOKEN_HEADER = AGENT_TOKEN_HEADER
"""Where the action token travels (``Authorization: Bearer`` is accepted for direct calls)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, detail: str) -> web.Response:
    return web.json_response(
        {"title": web.Response(status=status).reason, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


@web.middleware
async def _measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        service.metrics.requests.labels(route, str(status)).inc()
        service.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE_KEY].status())


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICE_KEY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def logs(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    sources = service.spec.logs
    name = request.query.get("file")
    if name is None:
        return web.json_response({"files": list_files(sources)})
    try:
        path = resolve(sources, name)
        lines = _int(request.query.get("tail"), "tail")
        since = parse_since(request.query["since"]) if "since" in request.query else None
    except LogAccessError as refused:
        return problem(refused.status, refused.message)
    if not path.is_file():
        return problem(404, f"log file {name!r} does not exist yet")
    follow_on = request.query.get("follow", "").lower() in ("1", "true", "yes")
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    for line in tail(path, lines, since):
        await response.write(line + b"\n")
    if follow_on:

        def gone() -> bool:
            transport = request.transport
            return transport is None or transport.is_closing()

        async for line in follow(path, gone):
            await response.write(line + b"\n")
    await response.write_eof()
    return response


async def action(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    name = request.match_info["name"]
    token = request.headers.get(TOKEN_HEADER, "").strip() or None
    header = request.headers.get("Authorization", "")
    if token is None and header.lower().startswith("bearer "):
        token = header[7:].strip()
    try:
        declared, grant = service.authorize(name, token)
    except TokenRejected as refused:
        return problem(refused.status, refused.reason)
    outcome = await service.run_authorized(declared, grant)
    return web.json_response(
        {
            "action": outcome.action,
            "ok": outcome.ok,
            "exitCode": outcome.exit_code,
            "output": outcome.output,
            "durationSeconds": round(outcome.duration_seconds, 3),
            "requester": grant.requester,
            "config": service.status()["config"],
        },
        status=200 if outcome.ok else 500,
    )


def _int(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise LogAccessError(400, f"{field}={value!r} is not a whole number") from None
    if number < 0:
        raise LogAccessError(400, f"{field}={value} must not be negative")
    return number


def build_app(service: AgentService) -> web.Application:
    app = web.Application(middlewares=[_measure], client_max_size=64 * 1024)
    app[SERVICE_KEY] = service
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/logs", logs)
    app.router.add_post("/v1/actions/{name}", action)
    return app


async def serve(service: AgentService) -> web.AppRunner:
    """Start the checks and the HTTP server; the caller keeps the runner to stop both."""
    await service.start()
    runner = web.AppRunner(build_app(service), access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, service.settings.listen, service.settings.port)
    await site.start()
    return runner
