"""Sign-in through a real OpenLDAP directory: the right password gives a session with the
directory's groups, and RBAC bound to those groups applies; every wrong case is a 401 that
changes nothing and is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from milkyway.kube.resources import APPLICATION
from milkyway.server.authn.ldap import LdapAuthenticator, LdapSettings

from .conftest import API, Front, application, start_front, stop_front
from .directory import ADMIN_DN, ADMIN_PASSWORD, GROUPS, PEOPLE, running_directory


def ldap_settings(url: str) -> LdapSettings:
    return LdapSettings(
        url=url,
        user_base=PEOPLE,
        group_base=GROUPS,
        bind_dn=ADMIN_DN,
        bind_password=ADMIN_PASSWORD,
        user_filter="(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))",
    )


@pytest.fixture
async def ldap_front(tmp_path: Path) -> AsyncIterator[Front]:
    with running_directory(tmp_path / "ldap") as directory:
        front, _ = await start_front(tmp_path, ldap=ldap_settings(directory.url))
        try:
            yield front
        finally:
            await stop_front(front)


async def _login(front: Front, username: str, password: str, **extra: str):
    async with front.http() as client:
        return await client.post(
            f"{API}/login", json={"username": username, "password": password, **extra}
        )


async def test_ldap_sign_in_gives_a_session_with_directory_groups(ldap_front: Front) -> None:
    front = ldap_front
    response = await _login(front, "carol", "carol-pw-3")
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["user"] == "carol" and session["method"] == "ldap"
    assert session["groups"] == ["platform", "team-a"]
    assert session["token"] not in str(front.state.audit.search())
    async with front.http(session["token"]) as carol:
        me = (await carol.get(f"{API}/whoami")).json()
        assert me == {"user": "carol", "groups": ["platform", "team-a"], "method": "session/ldap"}
        # platform is milkyway-admin in team-a: carol may create and delete there
        created = await carol.post(f"{API}/namespaces/team-a/applications", json=application())
        assert created.status_code == 201, created.text
        assert (
            await carol.delete(f"{API}/namespaces/team-a/applications/stream1")
        ).status_code == 202


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("alice", "wrong-password", "wrong password"),
        ("mallory", "whatever-pw", "unknown user"),
        ("frank", "frank-pw-4", "disabled user"),
        ("alice", "", "empty password (an anonymous bind would succeed)"),
        ("alice)(uid=*", "alice-pw-1", "filter injection"),
    ],
)
async def test_ldap_refusals_are_401_and_change_nothing(
    ldap_front: Front, username: str, password: str, why: str
) -> None:
    front = ldap_front
    response = await _login(front, username, password)
    expected = 422 if not password else 401
    assert response.status_code == expected, (why, response.text)
    assert "token" not in response.json()
    if expected == 401:
        assert front.state.audit.search(action="login")[-1]["decision"] == "unauthenticated"
    assert [i async for i in front.admin.list(APPLICATION, namespace="*")] == []


async def test_empty_password_never_binds(tmp_path: Path) -> None:
    with running_directory(tmp_path / "ldap") as directory:
        authenticator = LdapAuthenticator(ldap_settings(directory.url))
        assert await authenticator.authenticate("alice", "") is None
        assert (await authenticator.authenticate("alice", "alice-pw-1")) is not None


async def test_expired_session_is_401(ldap_front: Front) -> None:
    front = ldap_front
    front.state.signer.ttl_seconds = 2
    token = (await _login(front, "alice", "alice-pw-1")).json()["token"]
    async with front.http(token) as alice:
        assert (await alice.get(f"{API}/whoami")).status_code == 200
        deadline = time.time() + 5
        while time.time() < deadline + 1:
            await asyncio.sleep(0.5)
            if (await alice.get(f"{API}/whoami")).status_code == 401:
                break
        else:
            raise AssertionError("the session did not expire")
        refused = await alice.post(f"{API}/namespaces/team-a/applications", json=application())
        assert refused.status_code == 401
    assert [i async for i in front.admin.list(APPLICATION, namespace="*")] == []


async def test_sign_in_is_rate_limited(ldap_front: Front) -> None:
    front = ldap_front
    for _ in range(10):
        assert (await _login(front, "bob", "nope-wrong")).status_code == 401
    limited = await _login(front, "bob", "bob-pw-2")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
