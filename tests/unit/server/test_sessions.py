"""Session tokens: only the server's own, unexpired, well-formed tokens prove anyone."""

from __future__ import annotations

import time

import jwt
import pytest

from milkyway.server.authn.sessions import ALGORITHM, ISSUER, SessionSigner
from milkyway.server.identity import Identity

ALICE = Identity("alice", ("team-a",), "ldap")


async def test_a_session_names_user_groups_and_method() -> None:
    signer = SessionSigner(b"k" * 32)
    token, expires = signer.issue(ALICE)
    assert expires > time.time()
    assert await signer.authenticate_token(token) == Identity("alice", ("team-a",), "session/ldap")


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": "alice",
        "groups": ["team-a"],
        "amr": "ldap",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("key", "claims", "algorithm"),
    [
        (b"x" * 32, _claims(), ALGORITHM),  # signed with another key
        (b"k" * 32, _claims(exp=int(time.time()) - 5), ALGORITHM),  # expired
        (b"k" * 32, _claims(iss="someone-else"), ALGORITHM),  # another issuer
        (b"k" * 32, _claims(exp=None), ALGORITHM),  # never expires
        (b"k" * 32, _claims(groups="system:masters"), ALGORITHM),  # groups not a list
        (b"k" * 32, _claims(), "HS512"),  # another algorithm
    ],
    ids=["foreign-key", "expired", "issuer", "no-expiry", "groups-type", "algorithm"],
)
async def test_forged_or_stale_sessions_prove_nobody(
    key: bytes, claims: dict[str, object], algorithm: str
) -> None:
    token = jwt.encode(claims, key, algorithm=algorithm)
    assert await SessionSigner(b"k" * 32).authenticate_token(token) is None


async def test_an_unsigned_token_proves_nobody() -> None:
    token = jwt.encode(_claims(), None, algorithm="none")
    assert await SessionSigner(b"k" * 32).authenticate_token(token) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        SessionSigner(b"short")
