"""The browser's session: sign-in that sets an HttpOnly cookie, the CSRF token a page needs
to write, and sign-out.

The console never sees the session token: the cookie is ``HttpOnly`` (no script reads it),
``Secure`` (never sent over plain HTTP) and ``SameSite=Strict`` (no other site's page or
link makes the browser send it). Writes made with the cookie also need the ``X-CSRF-Token``
header, whose value only a page of the server's own origin can read (from these answers).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from milkyway.server.problems import unauthorized
from milkyway.server.routes.auth import Login, sign_in
from milkyway.server.state import SESSION_COOKIE, Caller, state_of

router = APIRouter(tags=["authentication"])


class BrowserSession(BaseModel):
    user: str
    groups: list[str]
    method: str
    expiresAt: float
    csrfToken: str


def _set_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


@router.post("/session", response_model=BrowserSession, responses={401: {}, 429: {}})
async def open_session(body: Login, request: Request, response: Response) -> BrowserSession:
    """Sign in for a browser: the session goes into the cookie, the CSRF token into the
    answer."""
    identity, token, expires = await sign_in(body, request)
    signer = state_of(request).signer
    _set_cookie(response, token, int(signer.ttl_seconds))
    return BrowserSession(
        user=identity.name,
        groups=list(identity.groups),
        method=identity.method,
        expiresAt=expires,
        csrfToken=signer.csrf_token(token),
    )


@router.get("/session", response_model=BrowserSession, responses={401: {}})
async def read_session(request: Request, identity: Caller) -> BrowserSession:
    """The signed-in user and the CSRF token of the cookie's session (a reloaded page asks
    here instead of keeping the token anywhere)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise unauthorized("no session cookie: sign in with POST /api/v1/session")
    signer = state_of(request).signer
    return BrowserSession(
        user=identity.name,
        groups=list(identity.groups),
        method=identity.method,
        expiresAt=signer.expiry(token),
        csrfToken=signer.csrf_token(token),
    )


@router.delete("/session", status_code=204, responses={401: {}, 403: {}})
async def close_session(identity: Caller) -> Response:
    """Sign out: the cookie is cleared (the session token itself stays valid until it
    expires; it was never readable by a script)."""
    response = Response(status_code=204)
    _set_cookie(response, "", 0)
    return response
