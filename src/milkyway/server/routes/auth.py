"""Sign-in (password → session token), who am I, and what may I do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from lightkube.generic_resource import create_global_resource
from pydantic import BaseModel, Field

from milkyway.server.authn import AuthUnavailable
from milkyway.server.identity import Identity
from milkyway.server.problems import Problem, unauthorized
from milkyway.server.state import Caller, kube_as, log, state_of

router = APIRouter(tags=["authentication"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    method: str | None = Field(
        default=None, description="ldap or keystone; by default each configured one in turn"
    )


class Session(BaseModel):
    token: str
    expiresAt: float
    user: str
    groups: list[str]
    method: str


class WhoAmI(BaseModel):
    user: str
    groups: list[str]
    method: str


async def sign_in(body: Login, request: Request) -> tuple[Identity, str, float]:
    """Check a user name and password with the configured methods: the identity, a new
    session token and its expiry (a problem otherwise: 401, 429, 503)."""
    state = state_of(request)
    source = request.client.host if request.client else "unknown"
    wait = state.limiter.allow(f"user:{body.username}", f"source:{source}")
    if wait:
        raise Problem(
            429,
            f"too many sign-in attempts; try again in {int(wait) + 1} s",
            kind="rate-limited",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    request.state.actor = body.username
    candidates = [a for a in state.passwords if body.method is None or a.name == body.method]
    if not candidates:
        configured = ", ".join(a.name for a in state.passwords) or "none"
        raise Problem(
            400, f"sign-in method {body.method!r} is not configured (configured: {configured})"
        )
    unavailable = []
    for authenticator in candidates:
        try:
            identity = await authenticator.authenticate(body.username, body.password)
        except AuthUnavailable as exc:
            log.warning("sign-in backend %s unavailable: %s", authenticator.name, exc)
            unavailable.append(authenticator.name)
            continue
        if identity is not None:
            token, expires = state.signer.issue(identity)
            request.state.identity = identity
            return identity, token, expires
    if unavailable and len(unavailable) == len(candidates):
        raise Problem(503, f"no identity backend could be reached ({', '.join(unavailable)})")
    raise unauthorized("wrong user name or password")


@router.post("/login", response_model=Session, responses={401: {}, 429: {}})
async def login(body: Login, request: Request) -> Session:
    """Exchange a user name and password for a server-signed session token."""
    identity, token, expires = await sign_in(body, request)
    return Session(
        token=token,
        expiresAt=expires,
        user=identity.name,
        groups=list(identity.groups),
        method=identity.method,
    )


@router.get("/whoami", response_model=WhoAmI, responses={401: {}})
async def whoami(identity: Caller) -> WhoAmI:
    return WhoAmI(user=identity.name, groups=list(identity.groups), method=identity.method)


class AccessQuestion(BaseModel):
    verb: str = Field(min_length=1, max_length=64, pattern=r"^[a-z*]+$")
    resource: str = Field(default="applications", max_length=128, pattern=r"^[a-z0-9./*-]*$")
    group: str = Field(default="milkyway.ebay.com", max_length=253, pattern=r"^[a-z0-9.*-]*$")
    namespace: str = Field(default="", max_length=63, pattern=r"^[a-z0-9-]*$")
    name: str = Field(default="", max_length=253, pattern=r"^[a-z0-9.-]*$")
    subresource: str = Field(default="", max_length=64, pattern=r"^[a-z]*$")


class AccessAnswer(BaseModel):
    allowed: bool
    reason: str = ""


SSAR = create_global_resource(
    "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews"
)


@router.post("/access-review", response_model=AccessAnswer, responses={401: {}})
async def access_review(
    question: AccessQuestion, request: Request, identity: Caller
) -> AccessAnswer:
    """May I? Asked of the management cluster as the caller (SelfSubjectAccessReview)."""
    attributes: dict[str, Any] = {
        k: v
        for k, v in {
            "verb": question.verb,
            "resource": question.resource,
            "group": question.group,
            "namespace": question.namespace,
            "name": question.name,
            "subresource": question.subresource,
        }.items()
        if v
    }
    client = kube_as(request, identity)
    review = SSAR(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": attributes},
        }
    )
    answer = await client.create(review)
    status = answer.to_dict().get("status") or {}
    return AccessAnswer(allowed=bool(status.get("allowed")), reason=status.get("reason", ""))
