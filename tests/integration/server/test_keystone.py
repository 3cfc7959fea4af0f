"""Sign-in through a real Keystone: its users, groups and project roles become the
identity RBAC judges; Keystone tokens work as bearer tokens; a Keystone domain kept in the
LDAP directory (Keystone-on-LDAP) signs in directory users. Every refusal is a 401 that
changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from milkyway.kube.resources import APPLICATION
from milkyway.server.authn.keystone import KeystoneAuthenticator, KeystoneSettings

from .conftest import API, Front, application, start_front, stop_front
from .directory import ADMIN_DN, ADMIN_PASSWORD, GROUPS, PEOPLE, SUFFIX, running_directory
from .keystone import Keystone, running_keystone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    with running_keystone(tmp_path_factory.mktemp("keystone")) as ks:
        project = ks.call(
            "POST", "/projects", {"project": {"name": "milkyway", "domain_id": "default"}}
        )
        role = ks.call("POST", "/roles", {"role": {"name": "operator"}})
        group = ks.call("POST", "/groups", {"group": {"name": "team-a", "domain_id": "default"}})
        users = {}
        for name, enabled in (("kate", True), ("ken", False)):
            users[name] = ks.call(
                "POST",
                "/users",
                {
                    "user": {
                        "name": name,
                        "password": f"{name}-pw-9",
                        "domain_id": "default",
                        "enabled": enabled,
                    }
                },
            )["user"]
        ks.call("PUT", f"/groups/{group['group']['id']}/users/{users['kate']['id']}")
        ks.call(
            "PUT",
            f"/projects/{project['project']['id']}/users/{users['kate']['id']}/roles/"
            f"{role['role']['id']}",
        )
        yield ks


@pytest.fixture
async def keystone_front(keystone: Keystone, tmp_path: Path) -> AsyncIterator[Front]:
    front, _ = await start_front(
        tmp_path, keystone=KeystoneSettings(url=keystone.url, project="milkyway")
    )
    try:
        yield front
    finally:
        await stop_front(front)


async def _login(front: Front, username: str, password: str) -> httpx.Response:
    async with front.http() as client:
        return await client.post(f"{API}/login", json={"username": username, "password": password})


async def test_keystone_sign_in_maps_groups_and_project_roles(keystone_front: Front) -> None:
    front = keystone_front
    response = await _login(front, "kate", "kate-pw-9")
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["method"] == "keystone"
    assert session["groups"] == ["milkyway:operator", "team-a"]
    async with front.http(session["token"]) as kate:
        created = await kate.post(f"{API}/namespaces/team-a/applications", json=application())
        assert created.status_code == 201, created.text
        assert (
            await kate.post(
                f"{API}/namespaces/team-b/applications", json=application(namespace="team-b")
            )
        ).status_code == 403


@pytest.mark.parametrize(
    ("username", "password"),
    [("kate", "wrong-pw"), ("nobody", "kate-pw-9"), ("ken", "ken-pw-9")],
    ids=["wrong-password", "unknown-user", "disabled-user"],
)
async def test_keystone_refusals_are_401(
    keystone_front: Front, username: str, password: str
) -> None:
    front = keystone_front
    response = await _login(front, username, password)
    assert response.status_code == 401, response.text
    assert front.state.audit.search(action="login")[-1]["decision"] == "unauthenticated"
    assert [i async for i in front.admin.list(APPLICATION, namespace="*")] == []


async def test_a_keystone_token_is_a_bearer_token(
    keystone: Keystone, keystone_front: Front
) -> None:
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "kate", "domain": {"id": "default"}, "password": "kate-pw-9"}
                },
            }
        }
    }
    async with httpx.AsyncClient(timeout=60) as plain:
        signed = await plain.post(f"{keystone.url}/auth/tokens", json=auth)
    token = signed.headers["X-Subject-Token"]
    async with keystone_front.http(token) as kate:
        me = await kate.get(f"{API}/whoami")
        assert me.status_code == 200, me.text
        assert me.json() == {"user": "kate", "groups": ["team-a"], "method": "keystone"}
    # a revoked token stops working once the cache lets go of it
    async with httpx.AsyncClient(timeout=60) as plain:
        await plain.delete(
            f"{keystone.url}/auth/tokens",
            headers={"X-Auth-Token": keystone.admin_token, "X-Subject-Token": token},
        )
    for authenticator in keystone_front.state.tokens:
        if isinstance(authenticator, KeystoneAuthenticator):
            authenticator.forget_cache()
    async with keystone_front.http(token) as kate:
        assert (await kate.get(f"{API}/whoami")).status_code == 401


async def test_keystone_with_an_ldap_identity_backend(keystone: Keystone, tmp_path: Path) -> None:
    with running_directory(tmp_path / "ldap") as directory:
        domain_name = f"corp-{uuid.uuid4().hex[:6]}"
        domain = keystone.call("POST", "/domains", {"domain": {"name": domain_name}})["domain"]
        keystone.call(
            "PUT",
            f"/domains/{domain['id']}/config",
            {
                "config": {
                    "identity": {"driver": "ldap"},
                    "ldap": {
                        "url": directory.url.rstrip("/"),
                        "user": ADMIN_DN,
                        "password": ADMIN_PASSWORD,
                        "suffix": SUFFIX,
                        "user_tree_dn": PEOPLE,
                        "user_objectclass": "inetOrgPerson",
                        "user_id_attribute": "uid",
                        "user_name_attribute": "uid",
                        "user_mail_attribute": "mail",
                        "user_pass_attribute": "userPassword",
                        "user_filter": "(!(employeeType=disabled))",
                        "group_tree_dn": GROUPS,
                        "group_objectclass": "groupOfNames",
                        "group_id_attribute": "cn",
                        "group_name_attribute": "cn",
                        "group_member_attribute": "member",
                        "group_desc_attribute": "description",
                    },
                }
            },
        )
        front, _ = await start_front(
            tmp_path, keystone=KeystoneSettings(url=keystone.url, user_domain=domain_name)
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                response = await _login(front, "alice", "alice-pw-1")
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
            assert response.status_code == 200, response.text
            assert response.json()["groups"] == ["team-a"]
            async with front.http(response.json()["token"]) as alice:
                created = await alice.post(
                    f"{API}/namespaces/team-a/applications", json=application()
                )
                assert created.status_code == 201, created.text
            assert (await _login(front, "alice", "wrong")).status_code == 401
            assert (await _login(front, "frank", "frank-pw-4")).status_code == 401
        finally:
            await stop_front(front)
