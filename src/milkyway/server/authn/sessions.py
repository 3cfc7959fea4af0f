"""Server-signed session tokens (JWT, HS256) given out at sign-in.

Several server replicas accept each other's sessions when they share the signing secret.
A session names the user, their groups and how they signed in, and expires.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
import uuid

import jwt

from milkyway.server.identity import Identity

ISSUER = "milkyway-server"
ALGORITHM = "HS256"


class SessionSigner:
    """Issues and checks session tokens with one shared secret."""

    name = "session"

    def __init__(self, secret: bytes | None = None, ttl_seconds: float = 8 * 3600) -> None:
        if secret is not None and len(secret) < 32:
            raise ValueError(
                f"the session secret has {len(secret)} bytes; use at least 32 random bytes "
                "(e.g. head -c 48 /dev/urandom | base64)"
            )
        self._secret = secret or secrets.token_bytes(48)
        self.ttl_seconds = ttl_seconds

    def issue(self, identity: Identity, *, now: float | None = None) -> tuple[str, float]:
        """(token, expiry as a Unix time)."""
        issued = time.time() if now is None else now
        expires = issued + self.ttl_seconds
        claims = {
            "iss": ISSUER,
            "sub": identity.name,
            "groups": list(identity.groups),
            "amr": identity.method,
            "iat": int(issued),
            "exp": math.ceil(expires),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires

    def csrf_token(self, session_token: str) -> str:
        """The CSRF token bound to one session (an HMAC of it under the signing secret):
        what a browser holding the session cookie must echo in ``X-CSRF-Token`` to write.
        A page of another site can make the browser send the cookie but cannot read this
        value, and every replica sharing the secret derives the same one."""
        mac = hmac.new(self._secret, b"csrf\x00" + session_token.encode(), hashlib.sha256)
        return mac.hexdigest()

    def expiry(self, token: str) -> float:
        """When a session token this signer issued expires (0 for one it did not)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER)
        except jwt.PyJWTError:
            return 0.0
        return float(claims.get("exp", 0))

    async def authenticate_token(self, token: str) -> Identity | None:
        if token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        groups = claims.get("groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return None
        return Identity(str(claims["sub"]), tuple(groups), f"session/{claims.get('amr', '')}")
