"""Who may run an admin action on a member: the token table.

Every case goes through the agent's real HTTP endpoint; every refusal must leave the
action unrun (the action writes a marker file) and be logged as a JSON audit line.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from milkyway.security.agent_tokens import (
    MAX_LIFETIME_SECONDS,
    pod_audience,
    sign_action_token,
)

from .agent_fixtures import NAMESPACE, POD, SigningKey, running_agent, write_key

AUDIENCE = pod_audience(NAMESPACE, POD)


def _spec(marker: Path) -> dict[str, object]:
    return {
        "actions": [
            {"name": "snapshot", "command": ["sh", "-c", f"echo ran >> {marker}"], "oneShot": True},
            {"name": "srvr", "command": ["sh", "-c", f"echo srvr >> {marker}"]},
            {"name": "defrag", "command": ["true"]},
        ]
    }


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _token(key: SigningKey, **overrides: object) -> str:
    return sign_action_token(
        key.private,
        key.key_id,
        audience=str(overrides.get("audience", AUDIENCE)),
        action=str(overrides.get("action", "snapshot")),
        requester=str(overrides.get("requester", "alice")),
        lifetime_seconds=int(overrides.get("lifetime", 300)),  # type: ignore[call-overload]
        now=overrides.get("now"),  # type: ignore[arg-type]
    )


def _unsigned(_key: SigningKey) -> str:
    now = int(time.time())
    claims = {
        "iss": "milkyway-operator",
        "aud": AUDIENCE,
        "sub": "mallory",
        "act": "snapshot",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "x",
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _hmac_with_public_key(key: SigningKey) -> str:
    now = int(time.time())
    claims = {
        "iss": "milkyway-operator",
        "aud": AUDIENCE,
        "sub": "mallory",
        "act": "snapshot",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "y",
    }
    header = {"alg": "HS256", "typ": "JWT", "kid": key.key_id}
    signing = f"{_b64(header)}.{_b64(claims)}".encode()
    import hashlib
    import hmac

    mac = hmac.new(key.public, signing, hashlib.sha256).digest()
    return signing.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _forged_with_other_key(key: SigningKey) -> str:
    from milkyway.security.agent_tokens import new_signing_key

    _kid, private, _public = new_signing_key()
    return sign_action_token(
        private, key.key_id, audience=AUDIENCE, action="snapshot", requester="mallory"
    )


def _tampered_claims(key: SigningKey) -> str:
    header, _claims, signature = _token(key, requester="bob").split(".")
    now = int(time.time())
    claims = {
        "iss": "milkyway-operator",
        "aud": AUDIENCE,
        "sub": "mallory",
        "act": "snapshot",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "z",
    }
    return f"{header}.{_b64(claims)}.{signature}"


def _missing_requester(key: SigningKey) -> str:
    now = int(time.time())
    claims = {
        "iss": "milkyway-operator",
        "aud": AUDIENCE,
        "act": "snapshot",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "w",
    }
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.private, password=None)
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.key_id})  # type: ignore[arg-type]


def _unknown_key(_key: SigningKey) -> str:
    from milkyway.security.agent_tokens import new_signing_key

    kid, private, _public = new_signing_key()
    return sign_action_token(private, kid, audience=AUDIENCE, action="snapshot", requester="eve")


CASES: list[tuple[str, str, Callable[[SigningKey], str | None], int]] = [
    ("valid", "snapshot", lambda k: _token(k), 200),
    ("no token", "snapshot", lambda k: None, 401),
    ("malformed", "snapshot", lambda k: "not-a-token", 401),
    ("expired", "snapshot", lambda k: _token(k, now=time.time() - 3600), 401),
    ("not yet valid", "snapshot", lambda k: _token(k, now=time.time() + 3600), 401),
    (
        "wrong audience pod",
        "snapshot",
        lambda k: _token(k, audience=pod_audience(NAMESPACE, "zk-1")),
        403,
    ),
    ("wrong namespace", "snapshot", lambda k: _token(k, audience=pod_audience("other", POD)), 403),
    ("wrong action", "snapshot", lambda k: _token(k, action="defrag"), 403),
    ("signed by another key under our key id", "snapshot", _forged_with_other_key, 401),
    ("claims edited after signing", "snapshot", _tampered_claims, 401),
    ("unsigned alg none", "snapshot", _unsigned, 401),
    ("HS256 keyed with the public key", "snapshot", _hmac_with_public_key, 401),
    ("unknown key id", "snapshot", _unknown_key, 401),
    (
        "lifetime above the maximum",
        "snapshot",
        lambda k: _token(k, lifetime=MAX_LIFETIME_SECONDS + 60),
        401,
    ),
    ("no requester", "snapshot", _missing_requester, 401),
    ("undeclared action", "rm-rf", lambda k: _token(k, action="rm-rf"), 404),
]


@pytest.mark.parametrize(("case", "action", "make", "status"), CASES, ids=[c[0] for c in CASES])
async def test_token_table(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    action: str,
    make: Callable[[SigningKey], str | None],
    status: int,
) -> None:
    marker = tmp_path / "ran"
    key = write_key(tmp_path / "keys")
    async with running_agent(tmp_path, _spec(marker)) as agent:
        token = make(key)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        with caplog.at_level(logging.INFO, logger="milkyway.agent.audit"):
            response = await agent.client.post(f"/v1/actions/{action}", headers=headers)
    assert response.status_code == status, (case, response.text)
    assert marker.exists() == (status == 200), case
    decisions = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "milkyway.agent.audit"
    ]
    assert decisions, "every decision is audited"
    first = decisions[0]
    assert first["decision"] == ("allowed" if status == 200 else "refused"), first
    assert first["action"] == action and first["pod"] == AUDIENCE
    if status == 200:
        assert first["requester"] == "alice"
        assert response.json()["requester"] == "alice"
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


async def test_a_one_shot_token_is_refused_when_replayed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    key = write_key(tmp_path / "keys")
    async with running_agent(tmp_path, _spec(marker)) as agent:
        headers = {"Authorization": f"Bearer {_token(key)}"}
        first = await agent.client.post("/v1/actions/snapshot", headers=headers)
        second = await agent.client.post("/v1/actions/snapshot", headers=headers)
    assert first.status_code == 200
    assert second.status_code == 403 and "already used" in second.json()["detail"]
    assert marker.read_text().count("ran") == 1


async def test_a_repeatable_action_accepts_its_token_again(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    key = write_key(tmp_path / "keys")
    async with running_agent(tmp_path, _spec(marker)) as agent:
        headers = {"Authorization": f"Bearer {_token(key, action='srvr')}"}
        responses = [await agent.client.post("/v1/actions/srvr", headers=headers) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert marker.read_text().count("srvr") == 2


async def test_key_rotation_retires_the_old_key(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    keys = tmp_path / "keys"
    old = write_key(keys)
    async with running_agent(tmp_path, _spec(marker)) as agent:
        new = write_key(keys)
        assert (
            await agent.client.post(
                "/v1/actions/srvr",
                headers={"Authorization": f"Bearer {_token(new, action='srvr')}"},
            )
        ).status_code == 200
        still_old = _token(old, action="srvr")
        assert (
            await agent.client.post(
                "/v1/actions/srvr", headers={"Authorization": f"Bearer {still_old}"}
            )
        ).status_code == 200
        (keys / f"{old.key_id}.pub").unlink()
        refused = await agent.client.post(
            "/v1/actions/srvr", headers={"Authorization": f"Bearer {still_old}"}
        )
    assert refused.status_code == 401 and "unknown key" in refused.json()["detail"]
