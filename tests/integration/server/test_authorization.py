"""One policy for REST and kubectl users: a table of users x groups x namespaces x verbs,
run through the REST API (the server impersonates the user) and through the real kubectl
with ``--as``/``--as-group`` (the same RoleBindings decide). Both must match the table;
every denied REST request leaves the store unchanged and is audited as denied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from milkyway.kube.resources import APPLICATION

from ..conftest import Kubectl
from .conftest import API, USERS, Front, application

VERBS = ("list", "get", "create", "update", "delete")
NAMESPACES = ("team-a", "team-b")
RESOURCE = "applications.milkyway.ebay.com"

# What each role grants, written out by hand from deploy/rbac/milkyway-roles.yaml.
GRANTS: dict[tuple[str, str], set[str]] = {
    ("alice", "team-a"): {"list", "get", "create", "update"},
    ("bob", "team-b"): {"list", "get", "create", "update"},
    ("carol", "team-a"): set(VERBS),
    ("carol", "team-b"): {"list", "get"},
    ("erin", "team-a"): {"list", "get"},
}
CASES = [(u, ns, verb) for u in USERS for ns in NAMESPACES for verb in VERBS]


def expected(user: str, namespace: str, verb: str) -> bool:
    return verb in GRANTS.get((user, namespace), set())


async def _snapshot(front: Front) -> dict[str, str]:
    return {
        f"{a.metadata.namespace}/{a.metadata.name}": a.metadata.resourceVersion
        async for a in front.admin.list(APPLICATION, namespace="*")
    }


async def _rest(front: Front, user: str, namespace: str, verb: str) -> bool:
    base = f"{API}/namespaces/{namespace}/applications"
    target = f"r-{user}"
    async with front.as_user(user) as client:
        if verb == "list":
            response = await client.get(f"{API}/applications", params={"namespace": namespace})
        elif verb == "get":
            response = await client.get(f"{base}/{target}")
        elif verb == "create":
            response = await client.post(base, json=application(f"r-{user}-new", namespace))
        elif verb == "update":
            current = await front.admin.get(APPLICATION, target, namespace=namespace)
            document = current.to_dict()
            document["spec"]["components"][0]["regions"][0]["zones"][0]["size"] = 5
            response = await client.put(f"{base}/{target}", json=document)
        else:
            response = await client.delete(f"{base}/{target}")
    assert response.status_code < 500 and response.status_code != 404, response.text
    return response.status_code != 403


async def _kubectl(kubectl: Kubectl, tmp: Path, user: str, namespace: str, verb: str) -> bool:
    who = ["--as", user, *(f"--as-group={g}" for g in USERS[user]), "-n", namespace]
    target = f"k-{user}"
    if verb == "list":
        args = ["get", RESOURCE]
    elif verb == "get":
        args = ["get", RESOURCE, target]
    elif verb == "create":
        manifest = tmp / f"{user}-{namespace}.json"
        manifest.write_text(json.dumps(application(f"k-{user}-new", namespace)))
        args = ["create", "-f", str(manifest)]
    elif verb == "update":
        args = [
            "patch",
            RESOURCE,
            target,
            "--type=merge",
            "-p",
            '{"metadata":{"labels":{"x":"y"}}}',
        ]
    else:
        args = ["delete", RESOURCE, target, "--wait=false"]
    result = await kubectl.run(*args, *who, check=False)
    forbidden = "forbidden" in result.stderr.lower()
    assert result.returncode == 0 or forbidden, result.stderr
    return not forbidden


@pytest.mark.slow
async def test_rest_and_kubectl_decide_alike(front: Front, tmp_path: Path) -> None:
    assert len(CASES) >= 40
    for namespace in NAMESPACES:
        for user in USERS:
            for prefix in ("r", "k"):
                await front.apply(application(f"{prefix}-{user}", namespace))
    kubectl = Kubectl(front.sim.kubeconfig_path, "mgmt", tmp_path / "kube-cache")
    mismatches: list[Any] = []
    for user, namespace, verb in CASES:
        before = await _snapshot(front)
        rest = await _rest(front, user, namespace, verb)
        if not rest:
            assert await _snapshot(front) == before, (user, namespace, verb)
        cli = await _kubectl(kubectl, tmp_path, user, namespace, verb)
        want = expected(user, namespace, verb)
        if (rest, cli) != (want, want):
            mismatches.append((user, namespace, verb, {"rest": rest, "kubectl": cli, "want": want}))
    assert mismatches == []
    denied = front.state.audit.search(decision="denied", limit=1000)
    expected_denials = sum(not expected(*case) for case in CASES)
    assert len(denied) == expected_denials
    assert all(r["auth_method"] == "static-token" and r["result"] == 403 for r in denied)
