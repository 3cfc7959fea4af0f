"""What every request handler shares: the management-cluster clients, the authenticators,
the session signer, the login limiter and the audit log; and the dependencies that prove
who is calling."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from lightkube import AsyncClient

from milkyway.kube.impersonation import ImpersonatingClients
from milkyway.model.sudo import HEADER as SUDO_HEADER
from milkyway.server.audit import AuditLog
from milkyway.server.authn import AuthUnavailable, PasswordAuthenticator, TokenAuthenticator
from milkyway.server.authn.ratelimit import LoginLimiter
from milkyway.server.authn.sessions import SessionSigner
from milkyway.server.identity import AUTHENTICATED_GROUP, Identity
from milkyway.server.problems import Problem, unauthorized

log = logging.getLogger("milkyway.server")


@dataclass
class ServerState:
    clients: ImpersonatingClients
    signer: SessionSigner
    audit: AuditLog
    limiter: LoginLimiter
    passwords: list[PasswordAuthenticator] = field(default_factory=list)
    tokens: list[TokenAuthenticator] = field(default_factory=list)
    page_limit_max: int = 500
    closers: list[Any] = field(default_factory=list)
    signing_key: bytes | None = None
    """The decision key (read, or created, at the first decision)."""

    async def decision_key(self) -> bytes:
        """The key approval decisions are signed with (see :mod:`milkyway.kube.decision_key`)."""
        if self.signing_key is None:
            from lightkube.core.exceptions import ApiError

            from milkyway.kube.decision_key import NAME, NAMESPACE, decision_key

            try:
                self.signing_key = await decision_key(self.clients.own())
            except (ApiError, ValueError) as exc:
                log.error("decision key %s/%s unavailable: %s", NAMESPACE, NAME, exc)
                raise Problem(
                    503,
                    f"the server cannot read its decision key {NAMESPACE}/{NAME}; an "
                    "administrator must apply deploy/rbac/milkyway-server.yaml",
                    kind="unavailable",
                ) from None
        return self.signing_key


def state_of(request: Request) -> ServerState:
    return request.app.state.milkyway


async def identify(request: Request, token: str) -> Identity | None:
    state = state_of(request)
    for authenticator in [state.signer, *state.tokens]:
        try:
            identity = await authenticator.authenticate_token(token)
        except AuthUnavailable as exc:
            log.warning("token check skipped %s: %s", authenticator.name, exc)
            continue
        if identity is not None:
            return identity
    return None


SESSION_COOKIE = "milkyway_session"
"""The cookie the console's sign-in sets: a session token, HttpOnly, Secure, SameSite=Strict."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def cookie_caller(request: Request, token: str) -> Identity:
    """The identity of a browser request carrying the session cookie. The browser attaches
    the cookie by itself, so a write must also prove it comes from the console's own page:
    the ``X-CSRF-Token`` header with the value the sign-in answered (403 otherwise)."""
    signer = state_of(request).signer
    identity = await signer.authenticate_token(token)
    if identity is None:
        raise unauthorized("the session cookie is not valid (expired or forged); sign in again")
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not given or not hmac.compare_digest(given, signer.csrf_token(token)):
            request.state.identity = identity
            raise Problem(
                403,
                f"a {request.method} with the session cookie needs the {CSRF_HEADER} header "
                "that sign-in answered (missing or wrong); nothing was changed",
                kind="csrf",
            )
    return identity


async def caller(request: Request) -> Identity:
    """The proven identity of the request (401 problem otherwise): a bearer token, or the
    console's session cookie when no Authorization header is sent; elevated by the sudo
    grant the request names, if any (403 when that grant may not be used)."""
    header = request.headers.get("authorization", "")
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not header and cookie:
        identity = await cookie_caller(request, cookie)
    else:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized(
                "sign in first: send Authorization: Bearer <token> (POST /api/v1/login)"
            )
        found = await identify(request, token.strip())
        if found is None:
            raise unauthorized("the bearer token is not valid (unknown, revoked or expired)")
        identity = found
    request.state.identity = identity
    elevation = request.headers.get(SUDO_HEADER)
    if elevation:
        from milkyway.server.routes.sudo import use_of

        identity = await use_of(request, identity, elevation)
        request.state.identity = identity
    return identity


Caller = Annotated[Identity, Depends(caller)]


def kube_as(request: Request, identity: Identity) -> AsyncClient:
    """A management-cluster client that acts as ``identity`` (RBAC judges the user)."""
    groups = [g for g in identity.groups if g != AUTHENTICATED_GROUP]
    try:
        return state_of(request).clients.as_user(identity.name, groups)
    except ValueError as exc:
        raise Problem(400, str(exc), kind="bad-identity") from exc


async def may(
    request: Request,
    identity: Identity,
    verb: str,
    resource: str,
    *,
    group: str = "milkyway.ebay.com",
    namespace: str = "",
) -> bool:
    """Whether the management cluster's RBAC lets ``identity`` do this (an access review
    asked as the user)."""
    from lightkube.generic_resource import create_global_resource

    review_type = create_global_resource(
        "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews"
    )
    attributes = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attributes["namespace"] = namespace
    review = review_type(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": attributes},
        }
    )
    answer = await kube_as(request, identity).create(review)
    return bool((answer.to_dict().get("status") or {}).get("allowed"))
