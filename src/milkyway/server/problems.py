"""One error shape for every response: RFC 9457 problem details.

``{"type", "title", "status", "detail", "instance", "requestId", "errors"}``; validation
failures carry ``errors`` with the same field paths, values, problems and fixes that
``milkyway validate`` prints, so a UI can place each one next to its field.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from lightkube import ApiError
from starlette.exceptions import HTTPException as StarletteHTTPException

from milkyway.flows.store import Conflict, NotFound, StoreError
from milkyway.kube.applications import ApplicationNotFound, KeepsChanging
from milkyway.model.edits import EditError
from milkyway.model.errors import FieldError, ValidationFailed, shown_value

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error to send as problem details; ``kind`` becomes the ``type`` URN."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str = "",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, kind="unauthenticated", headers={"WWW-Authenticate": "Bearer"})


def field_errors(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [
        {
            "field": e.path or "<document>",
            "value": _jsonable(e.value),
            "problem": e.message,
            "fix": e.fix,
        }
        for e in errors
    ]


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:milkyway:problem:{problem.kind}",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["requestId"] = request_id
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def from_kube(exc: ApiError) -> Problem:
    """The management cluster's answer, passed on: its status code and message."""
    status = exc.status
    code = int(status.code or 502)
    if code < 400 or code >= 600:
        code = 502
    if code >= 500:
        return Problem(502, f"the management cluster failed: {status.message}", kind="upstream")
    kind = {403: "forbidden", 404: "not-found", 409: "conflict", 422: "invalid"}.get(code, "")
    return Problem(code, status.message or str(exc), kind=kind)


def install(app: Any) -> None:
    """Route every error the app can raise to a problem-details response."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(ValidationFailed)
    async def _invalid(request: Request, exc: ValidationFailed) -> JSONResponse:
        detail = f"{len(exc.errors)} problem(s) in the Application; nothing was changed"
        return problem_response(
            request, Problem(422, detail, kind="invalid", errors=field_errors(exc.errors))
        )

    @app.exception_handler(EditError)
    async def _edit(request: Request, exc: EditError) -> JSONResponse:
        return problem_response(request, Problem(422, str(exc), kind="invalid-edit"))

    @app.exception_handler(ApplicationNotFound)
    async def _missing(request: Request, exc: ApplicationNotFound) -> JSONResponse:
        return problem_response(request, Problem(404, str(exc), kind="not-found"))

    @app.exception_handler(KeepsChanging)
    async def _busy(request: Request, exc: KeepsChanging) -> JSONResponse:
        return problem_response(request, Problem(409, str(exc), kind="conflict"))

    @app.exception_handler(ApiError)
    async def _kube(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(request, from_kube(exc))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ApiError):
            return problem_response(request, from_kube(cause))
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 502
        return problem_response(request, Problem(status, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "value": _jsonable(e.get("input")),
                "problem": e.get("msg", ""),
                "fix": "send a value of the documented type (see /openapi.json)",
            }
            for e in exc.errors()
        ]
        return problem_response(
            request,
            Problem(422, "the request does not match the API", kind="invalid", errors=errors),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, Problem(exc.status_code, str(exc.detail)))


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it: a scalar as it is, a small list or mapping of
    plain JSON as it is, anything else (a non-finite number, a large or odd structure)
    as its shortened repr, so that no value can break or flood an error response."""
    if value is None or isinstance(value, str | bool | int):
        return value if not isinstance(value, str) or len(value) <= 200 else shown_value(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, list | dict):
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return shown_value(value)
        return value if len(text) <= 400 else shown_value(value)
    return shown_value(value)
