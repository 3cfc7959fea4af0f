"""Serves the web console: plain HTML, CSS and JavaScript modules shipped in the package
(``milkyway/server/console/``), no build step and nothing fetched from elsewhere.

The console is a client of the public REST API and its event streams like any other: it
signs in with ``POST /api/v1/session`` and then calls ``/api/v1`` with the session cookie.
Its pages are sent with a Content-Security-Policy that allows only the server's own
origin (no inline script, no other site), and may not be framed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_PATH = "/console"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def mount(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (and send ``/`` there)."""
    if not (CONSOLE_DIR / "index.html").is_file():
        raise RuntimeError(
            f"the console's files are missing from {CONSOLE_DIR}; reinstall milkyway "
            "(they are package data of milkyway.server)"
        )

    @app.get("/", include_in_schema=False)
    async def to_console() -> Any:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)

    app.mount(CONSOLE_PATH, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
