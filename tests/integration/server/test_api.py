"""The REST API against a simulated management cluster with RBAC: static tokens,
impersonation, validation problems, conflicts, lifecycle actions and the audit trail."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import httpx
import pytest
from lightkube.types import PatchType

from milkyway.components import builtin_component_types
from milkyway.kube.resources import APPLICATION
from milkyway.model.edits import scale_edit
from milkyway.model.errors import ValidationFailed
from milkyway.model.load import load_resolved
from milkyway.server.app import create_app
from milkyway.server.settings import ServerSettings

from .conftest import API, Front, application

APPS_A = f"{API}/namespaces/team-a/applications"


async def test_unauthenticated_calls_get_401_problems(front: Front) -> None:
    async with front.http() as anonymous, front.http("not-a-token") as forged:
        for client in (anonymous, forged):
            response = await client.get(f"{API}/applications")
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == 401 and problem["type"].startswith("urn:milkyway:problem:")
            assert problem["requestId"] == response.headers["x-request-id"]
            assert response.headers["www-authenticate"] == "Bearer"
    records = front.state.audit.search(decision="unauthenticated")
    assert len(records) == 2 and {r["actor"] for r in records} == {""}


async def test_static_token_identity_and_impersonated_rbac(front: Front) -> None:
    async with front.as_user("alice") as alice:
        me = (await alice.get(f"{API}/whoami")).json()
        assert me == {"user": "alice", "groups": ["team-a"], "method": "static-token"}
        created = await alice.post(APPS_A, json=application())
        assert created.status_code == 201, created.text
        body = created.json()
        assert (
            body["metadata"]["annotations"]["milkyway.ebay.com/request-id"]
            == (created.headers["x-request-id"])
        )
        # alice edits team-a but may not delete there, nor touch team-b
        denied = await alice.delete(f"{APPS_A}/stream1")
        assert denied.status_code == 403
        assert 'User "alice" cannot delete resource "applications"' in denied.json()["detail"]
        other = await alice.post(
            f"{API}/namespaces/team-b/applications", json=application(namespace="team-b")
        )
        assert other.status_code == 403
    stored = await front.admin.get(APPLICATION, "stream1", namespace="team-a")
    assert stored.metadata.deletionTimestamp is None
    assert [
        r["decision"] for r in front.state.audit.search(actor="alice", action="delete_application")
    ] == ["denied"]


async def test_validation_problems_match_milkyway_validate(front: Front) -> None:
    bad = application()
    bad["spec"]["components"][0]["regions"][0]["zones"][0]["size"] = -1
    bad["spec"]["components"][1]["version"] = ""
    import yaml

    try:
        load_resolved(yaml.safe_dump(bad), builtin_component_types())
    except ValidationFailed as exc:
        expected = [(e.path, e.message, e.fix) for e in exc.errors]
    else:
        raise AssertionError("the manifest should be invalid")
    async with front.as_user("alice") as alice:
        response = await alice.post(APPS_A, json=bad)
    assert response.status_code == 422
    problem = response.json()
    assert [(e["field"], e["problem"], e["fix"]) for e in problem["errors"]] == expected
    listed = [i async for i in front.admin.list(APPLICATION, namespace="team-a")]
    assert listed == []


async def test_update_with_a_stale_resource_version_is_a_conflict(front: Front) -> None:
    async with front.as_user("alice") as alice:
        assert (await alice.post(APPS_A, json=application())).status_code == 201
        read = (await alice.get(f"{APPS_A}/stream1")).json()
        # someone else changes it meanwhile
        await front.admin.patch(
            APPLICATION,
            "stream1",
            {"metadata": {"labels": {"owner": "x"}}},
            namespace="team-a",
            patch_type=PatchType.MERGE,
        )
        stale = copy.deepcopy(read)
        stale["spec"]["components"][0]["version"] = "3.4.14"
        conflict = await alice.put(f"{APPS_A}/stream1", json=stale)
        assert conflict.status_code == 409, conflict.text
        missing = copy.deepcopy(stale)
        del missing["metadata"]["resourceVersion"]
        unversioned = await alice.put(f"{APPS_A}/stream1", json=missing)
        assert unversioned.status_code == 422
        assert unversioned.json()["errors"][0]["field"] == "metadata.resourceVersion"
        fresh = (await alice.get(f"{APPS_A}/stream1")).json()
        fresh["spec"]["components"][0]["version"] = "3.4.14"
        updated = await alice.put(f"{APPS_A}/stream1", json=fresh)
        assert updated.status_code == 200, updated.text
    stored = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    assert stored["spec"]["components"][0]["version"] == "3.4.14"


async def test_scale_action_makes_the_cli_edit(front: Front) -> None:
    async with front.as_user("alice") as alice:
        assert (await alice.post(APPS_A, json=application())).status_code == 201
        before = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
        response = await alice.post(
            f"{APPS_A}/stream1/scale", json={"component": "kafka1", "zone": "phx", "size": 5}
        )
        assert response.status_code == 200, response.text
        assert response.json()["message"].endswith("kafka1: zone phx size 3 -> 5")
        unknown = await alice.post(
            f"{APPS_A}/stream1/scale", json={"component": "nope", "zone": "phx", "size": 5}
        )
        assert unknown.status_code == 422 and "no component 'nope'" in unknown.json()["detail"]
    after = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    expected = copy.deepcopy(before["spec"])
    scale_edit("kafka1", "phx", 5, None)(expected)
    assert after["spec"] == expected


async def test_list_pages_with_continue_tokens(front: Front) -> None:
    for i in range(5):
        await front.apply(application(f"app{i}", "team-a"))
    seen: list[str] = []
    token = ""
    pages = 0
    async with front.as_user("alice") as alice:
        while True:
            params = {"namespace": "team-a", "limit": 2}
            if token:
                params["continue"] = token
            page = (await alice.get(f"{API}/applications", params=params)).json()
            seen += [i["metadata"]["name"] for i in page["items"]]
            assert all(i["kind"] == "Application" for i in page["items"])
            pages += 1
            token = page["continue"]
            if not token:
                break
        everywhere = await alice.get(f"{API}/applications")
    assert pages == 3 and sorted(seen) == [f"app{i}" for i in range(5)]
    # alice may not list every namespace: the cluster says so, the API passes it on
    assert everywhere.status_code == 403


async def test_cors_is_closed_unless_origins_are_listed(front: Front, tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with front.http() as client:
        response = await client.options(f"{API}/applications", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    settings = ServerSettings(
        kubeconfig="/nonexistent",
        audit_url=f"sqlite:///{tmp_path / 'a.db'}",
        cors_origins=["https://ui.example"],
    )
    app = create_app(settings, front.state)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://server"
    ) as client:
        allowed = await client.options(
            f"{API}/applications", headers={**preflight, "Origin": "https://ui.example"}
        )
        refused = await client.options(f"{API}/applications", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_no_token_or_password_reaches_a_log_line(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = front.tokens["alice"]
    async with front.http(secret) as alice:
        await alice.get(f"{API}/whoami")
    async with front.http() as client:
        await client.post(f"{API}/login", json={"username": "x", "password": "hunter2-secret"})
    logging.getLogger("milkyway.server").warning("rejected Authorization: Bearer %s", secret)
    assert secret not in caplog.text and "hunter2-secret" not in caplog.text
    assert "Bearer [redacted]" in caplog.text


async def test_oversized_bodies_are_refused_before_reading(front: Front) -> None:
    huge = application()
    huge["metadata"]["annotations"] = {"x": "y" * (2 * 1024 * 1024)}
    async with front.as_user("alice") as alice:
        response = await alice.post(APPS_A, json=huge)
    assert response.status_code == 413
    assert response.json()["detail"].endswith("the limit is 1048576")
    assert [i async for i in front.admin.list(APPLICATION, namespace="*")] == []


async def test_audit_search_shows_everyone_only_to_auditors(front: Front) -> None:
    async with front.as_user("alice") as alice, front.as_user("bob") as bob:
        await alice.get(f"{API}/whoami")
        await bob.get(f"{API}/whoami")
        own = (await bob.get(f"{API}/audit")).json()["items"]
        assert {r["actor"] for r in own} == {"bob"}
        await front.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "bob-audits"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "milkyway-auditor",
                },
                "subjects": [{"kind": "User", "name": "bob"}],
            }
        )
        everyone = (await bob.get(f"{API}/audit", params={"limit": 1000})).json()["items"]
        assert {"alice", "bob"} <= {r["actor"] for r in everyone}
        assert {r["actor"] for r in (await alice.get(f"{API}/audit")).json()["items"]} == {"alice"}


async def test_an_audit_cursor_past_any_row_id_is_a_field_error(front: Front) -> None:
    async with front.as_user("alice") as alice:
        answer = await alice.get(f"{API}/audit", params={"after": 10**20})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "query.after"
