"""Impersonation (``Impersonate-User``/``-Group``) and ``kubectl auth whoami`` on the
simulator: allowed only with the ``impersonate`` verb, refused with a real server's 403."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from milkyway.sim.clusters import SimulatedClusters

from ..conftest import Kubectl

CMS = "/api/v1/namespaces/default/configmaps"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


@pytest.fixture
async def rbac_sim(tmp_path: Path) -> AsyncIterator[SimulatedClusters]:
    async with SimulatedClusters(["c1"], kubeconfig_path=tmp_path / "kc", rbac=True) as sim:
        yield sim


def _client(sim: SimulatedClusters, token: str, **headers: str) -> httpx.AsyncClient:
    assert sim.certificate is not None
    context = ssl.create_default_context(cadata=sim.certificate.ca_pem.decode())
    return httpx.AsyncClient(
        base_url=sim["c1"].url,
        headers={"Authorization": f"Bearer {token}", **headers},
        verify=context,
        timeout=30,
    )


async def _grant(admin: httpx.AsyncClient) -> None:
    """``front-door`` may impersonate users and groups; ``team-a`` may read ConfigMaps."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "impersonator"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["users", "groups", "serviceaccounts"],
                "verbs": ["impersonate"],
            }
        ],
    }
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "cm-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }
    bindings = [
        (
            f"{RBAC}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "front-door"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "impersonator",
                },
                "subjects": [{"kind": "User", "name": "front-door"}],
            },
        ),
        (
            f"{RBAC}/namespaces/default/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "team-a-read", "namespace": "default"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "cm-reader",
                },
                "subjects": [{"kind": "Group", "name": "team-a"}],
            },
        ),
    ]
    assert (await admin.post(f"{RBAC}/clusterroles", json=role)).status_code == 201
    namespaced = f"{RBAC}/namespaces/default/roles"
    assert (await admin.post(namespaced, json=reader)).status_code == 201
    for path, body in bindings:
        assert (await admin.post(path, json=body)).status_code == 201


async def test_impersonation_needs_the_impersonate_verb(rbac_sim: SimulatedClusters) -> None:
    sim = rbac_sim
    door, mallory = sim.add_user("front-door"), sim.add_user("mallory", groups=["team-a"])
    async with _client(sim, sim.admin_token) as admin:
        await _grant(admin)
    as_alice = {"Impersonate-User": "alice"}
    async with _client(sim, mallory, **as_alice) as client:
        refused = await client.get(CMS)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        'users "alice" is forbidden: User "mallory" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )
    # alice alone may not read; alice in team-a may, and only the group grants it
    async with _client(sim, door, **as_alice) as client:
        assert (await client.get(CMS)).status_code == 403
        whoami = await client.post(WHOAMI, json=REVIEW)
    assert whoami.status_code == 201
    assert whoami.json()["status"]["userInfo"] == {
        "username": "alice",
        "groups": ["system:authenticated"],
    }
    async with _client(sim, door, **as_alice, **{"Impersonate-Group": "team-a"}) as client:
        assert (await client.get(CMS)).status_code == 200
        info = (await client.post(WHOAMI, json=REVIEW)).json()["status"]["userInfo"]
        assert info["groups"] == ["team-a", "system:authenticated"]
        # reading is all team-a may do, impersonated or not
        write = await client.post(
            CMS, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        )
        assert write.status_code == 403
        assert 'User "alice" cannot create resource "configmaps"' in write.json()["message"]
    # a group without a user is refused, as a real server does
    async with _client(sim, door, **{"Impersonate-Group": "team-a"}) as client:
        lone_group = await client.get(CMS)
    assert lone_group.status_code == 500
    assert "without impersonating a user" in lone_group.json()["message"]
    # a service account name is checked against serviceaccounts in its namespace
    async with _client(sim, mallory, **{"Impersonate-User": "system:serviceaccount:ops:bot"}) as c:
        sa = await c.get(CMS)
    assert sa.status_code == 403
    assert sa.json()["message"].startswith(
        'serviceaccounts "bot" is forbidden: User "mallory" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "ops"'
    )


async def test_kubectl_as_and_auth_whoami(rbac_sim: SimulatedClusters, tmp_path: Path) -> None:
    sim = rbac_sim
    async with _client(sim, sim.admin_token) as admin:
        await _grant(admin)
    kubectl = Kubectl(sim.kubeconfig_path, "c1", tmp_path / "cache")
    me = await kubectl.run("auth", "whoami", "-o", "json")
    assert '"username": "admin"' in me.stdout
    alice = await kubectl.run(
        "auth", "whoami", "--as", "alice", "--as-group", "team-a", "-o", "json"
    )
    assert '"username": "alice"' in alice.stdout and '"team-a"' in alice.stdout
    allowed = await kubectl.run("get", "configmaps", "--as", "alice", "--as-group", "team-a")
    assert allowed.returncode == 0
    denied = await kubectl.run("get", "configmaps", "--as", "alice", check=False)
    assert denied.returncode != 0
    assert 'User "alice" cannot list resource "configmaps"' in denied.stderr
