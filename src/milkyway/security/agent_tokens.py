"""Short-lived tokens that let the operator (or a person through it) run one admin
action on one member pod's agent.

The operator signs with an Ed25519 private key kept in a Secret of the member cluster;
every agent mounts only the public keys, one ``<key id>.pub`` PEM file each, so a key is
rotated by adding the new public key, signing with it, then removing the old one. A token
names exactly one pod (``aud``), one action (``act``) and the person who asked (``sub``),
and lives for minutes: a leaked token is worth one action on one pod for a short time.

Failures are split the HTTP way: a token that cannot be trusted at all (malformed, bad
signature, unknown key, ``alg: none``, expired, not yet valid) is an authentication
failure (401); a trusted token that does not cover this request (another pod, another
action, already used) is an authorization failure (403).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
ISSUER = "milkyway-operator"
MAX_LIFETIME_SECONDS = 15 * 60
"""Tokens that claim to live longer than this are refused, whoever signed them."""
DEFAULT_LIFETIME_SECONDS = 5 * 60
CLOCK_LEEWAY_SECONDS = 5


class TokenRejected(Exception):
    """A token that does not allow the request; ``status`` is 401 or 403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ActionGrant:
    """What a verified token allows."""

    requester: str
    audience: str
    action: str
    token_id: str
    expires_at: float
    key_id: str


def pod_audience(namespace: str, pod: str) -> str:
    """The audience a token must name to be accepted by the agent of ``namespace/pod``."""
    return f"pod:{namespace}/{pod}"


def new_signing_key() -> tuple[str, bytes, bytes]:
    """A fresh key: ``(key id, private PEM, public PEM)``."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return uuid.uuid4().hex[:16], private, public


def sign_action_token(
    private_pem: bytes,
    key_id: str,
    *,
    audience: str,
    action: str,
    requester: str,
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    now: float | None = None,
) -> str:
    """A token allowing ``requester`` to run ``action`` on the pod named by ``audience``."""
    if not requester:
        raise ValueError("an action token needs the requester's identity")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "aud": audience,
        "sub": requester,
        "act": action,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
        "jti": uuid.uuid4().hex,
    }
    key = serialization.load_pem_private_key(private_pem, password=None)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id})  # type: ignore[arg-type]


class PublicKeyDirectory:
    """The public keys an agent trusts: every ``<key id>.pub`` file of a directory,
    re-read when the directory changes (the kubelet swaps a mounted Secret's files)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[float, tuple[str, ...]] | None = None
        self._keys: dict[str, Ed25519PublicKey] = {}

    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        try:
            names = tuple(sorted(p.name for p in self.directory.glob("*.pub")))
            stamp = (self.directory.stat().st_mtime, names)
        except OSError:
            return {}
        if stamp != self._stamp:
            loaded: dict[str, Ed25519PublicKey] = {}
            for name in names:
                try:
                    key = serialization.load_pem_public_key((self.directory / name).read_bytes())
                except (OSError, ValueError):
                    continue
                if isinstance(key, Ed25519PublicKey):
                    loaded[name.removesuffix(".pub")] = key
            self._keys, self._stamp = loaded, stamp
        return self._keys


def verify_action_token(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    audience: str,
    action: str,
    now: float | None = None,
) -> ActionGrant:
    """The grant of ``token`` for running ``action`` on ``audience``, or TokenRejected."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRejected(401, f"malformed token: {error}") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(401, f"token algorithm {header.get('alg')!r} is not {ALGORITHM}")
    key_id = header.get("kid")
    key = keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        raise TokenRejected(401, f"token signed with unknown key {key_id!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={
                "verify_aud": False,
                "require": ["exp", "nbf", "iat", "aud", "sub", "act", "jti"],
                "verify_exp": now is None,
                "verify_nbf": now is None,
                "verify_iat": False,
            },
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected(401, "token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected(401, "token not yet valid") from None
    except jwt.PyJWTError as error:
        raise TokenRejected(401, f"invalid token: {error}") from None
    if now is not None:
        if claims["exp"] + CLOCK_LEEWAY_SECONDS < now:
            raise TokenRejected(401, "token expired")
        if claims["nbf"] - CLOCK_LEEWAY_SECONDS > now:
            raise TokenRejected(401, "token not yet valid")
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
        raise TokenRejected(401, f"token lifetime exceeds {MAX_LIFETIME_SECONDS} s")
    if claims["aud"] != audience:
        raise TokenRejected(403, f"token is for {claims['aud']!r}, not {audience!r}")
    if claims["act"] != action:
        raise TokenRejected(403, f"token allows action {claims['act']!r}, not {action!r}")
    return ActionGrant(
        requester=str(claims["sub"]),
        audience=audience,
        action=action,
        token_id=str(claims["jti"]),
        expires_at=float(claims["exp"]),
        key_id=key_id,
    )


class ReplayGuard:
    """Remembers the ids of tokens already used for one-shot actions until they expire,
    so a captured token cannot run the same action twice."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._used: dict[str, float] = {}

    def claim(self, grant: ActionGrant, now: float | None = None) -> None:
        moment = time.time() if now is None else now
        if len(self._used) >= self.capacity:
            self._used = {jti: exp for jti, exp in self._used.items() if exp >= moment}
        if grant.token_id in self._used:
            raise TokenRejected(403, "token already used for this one-shot action")
        if len(self._used) >= self.capacity:
            raise TokenRejected(403, "too many one-shot tokens in flight; retry later")
        self._used[grant.token_id] = grant.expires_at + CLOCK_LEEWAY_SECONDS
