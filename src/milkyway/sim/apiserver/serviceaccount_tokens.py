"""Service account tokens: signed JWTs the simulated API server issues and accepts.

A token names ``system:serviceaccount:<namespace>:<name>`` with the ServiceAccount's uid
(and, for a token bound to a pod, the pod's name and uid), as the real
``kubernetes.io`` claims do. It authenticates only while it is unexpired, its signature
checks out and the ServiceAccount (and bound pod) still exist with the same uids, so a
deleted and re-created ServiceAccount does not inherit old tokens. Tokens are signed with
HMAC-SHA256 under a per-cluster key; a simulator with a data directory derives the key
from its persisted TLS key, so tokens survive a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from milkyway.sim.apiserver.auth import AUTHENTICATED_GROUP, User

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION_SECONDS = 3607
SA_KEY = ("", "serviceaccounts")
POD_KEY = ("", "pods")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


class ServiceAccountTokens:
    """Issues and verifies the tokens of one cluster."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    @classmethod
    def derived_from(cls, secret: bytes) -> ServiceAccountTokens:
        """A signer whose key is derived from ``secret`` (e.g. the persisted TLS key)."""
        return cls(hmac.new(secret, b"service-account-token-signing", hashlib.sha256).digest())

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        now: datetime,
        audiences: list[str] | None = None,
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        pod: tuple[str, str] | None = None,
    ) -> tuple[str, datetime]:
        """(token, expiry) for ServiceAccount ``namespace/name`` with ``uid``."""
        issued = int(now.timestamp())
        expires = issued + expiration_seconds
        identity: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        }
        if pod is not None:
            identity["pod"] = {"name": pod[0], "uid": pod[1]}
        claims = {
            "aud": audiences or [ISSUER],
            "exp": expires,
            "iat": issued,
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "kubernetes.io": identity,
            "nbf": issued,
            "sub": username(namespace, name),
        }
        header = _b64(json.dumps({"alg": "HS256", "kid": self.key_id, "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(self._sign(f"{header}.{body}"))
        return f"{header}.{body}.{signature}", datetime.fromtimestamp(expires, UTC)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self._key).hexdigest()[:16]

    def _sign(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode(), hashlib.sha256).digest()

    def claims(self, token: str, now: datetime) -> dict[str, Any] | None:
        """The claims of a well-signed, unexpired token; None otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, TypeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        moment = now.timestamp()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= moment:
            return None
        if isinstance(claims.get("nbf"), int) and claims["nbf"] > moment + 60:
            return None
        return claims


def authenticate(
    tokens: ServiceAccountTokens,
    lookup: Callable[[tuple[str, str], str, str], dict[str, Any] | None],
    authorization: str | None,
    now: datetime,
) -> User | None:
    """The service account a bearer token stands for, if it is one of this cluster's."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    claims = tokens.claims(token.strip(), now)
    if claims is None:
        return None
    identity = claims.get("kubernetes.io") or {}
    namespace = identity.get("namespace", "")
    account = identity.get("serviceaccount") or {}
    stored = lookup(SA_KEY, namespace, account.get("name", ""))
    if stored is None or stored["metadata"].get("uid") != account.get("uid"):
        return None
    pod = identity.get("pod")
    if pod is not None:
        bound = lookup(POD_KEY, namespace, pod.get("name", ""))
        if bound is None or bound["metadata"].get("uid") != pod.get("uid"):
            return None
    return User(
        username(namespace, account["name"]),
        account.get("uid", ""),
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED_GROUP),
    )


def token_request(api: Any, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Answer a TokenRequest (``serviceaccounts/<name>/token``) for ``api`` (a ClusterAPI)."""
    from milkyway.sim.apiserver.errors import bad_request

    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request("spec of a TokenRequest must be an object")
    seconds = spec.get("expirationSeconds", DEFAULT_EXPIRATION_SECONDS)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 600:
        raise bad_request(
            f"spec.expirationSeconds: Invalid value: {seconds!r}: may not specify a duration "
            "less than 10 minutes"
        )
    audiences = spec.get("audiences") or None
    bound = spec.get("boundObjectRef") or {}
    pod = bound.get("name") if isinstance(bound, dict) and bound.get("kind") == "Pod" else None
    token, expires = api.issue_token(
        namespace, name, audiences=audiences, expiration_seconds=seconds, pod=pod
    )
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {
            "audiences": audiences or [ISSUER],
            "expirationSeconds": seconds,
            "boundObjectRef": bound or None,
        },
        "status": {
            "token": token,
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
