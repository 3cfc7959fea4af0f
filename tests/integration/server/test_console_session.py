"""The console's browser session: sign-in sets an HttpOnly, Secure, SameSite=Strict cookie
and answers a CSRF token; writes with the cookie need that token (missing, wrong, or a
token of another session: 403, nothing changed, audited); dry runs change nothing; the
console's files are served with a strict Content-Security-Policy."""

from __future__ import annotations

import httpx

from milkyway.kube.resources import APPLICATION

from .conftest import API, Front, application
from .test_ldap import ldap_front  # noqa: F401  (the fixture)

SCALE = f"{API}/namespaces/team-a/applications/stream1/scale"
BODY = {"component": "kafka1", "zone": "phx", "size": 5}


def browser(front: Front) -> httpx.AsyncClient:
    """A client that behaves as a browser on the server's origin: cookies kept, no
    Authorization header."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=front.app, client=("10.9.8.7", 5555)),
        base_url="https://server",
        timeout=60,
    )


async def _sign_in(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/session", json={"username": user, "password": password})


async def _kafka_phx_size(front: Front) -> int:
    app = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    kafka = next(c for c in app["spec"]["components"] if c["name"] == "kafka1")
    return next(z["size"] for r in kafka["regions"] for z in r["zones"] if z["name"] == "phx")


async def test_cookie_attributes_and_csrf_refusals(ldap_front: Front) -> None:  # noqa: F811
    front = ldap_front
    await front.apply(application())
    before = await _kafka_phx_size(front)
    async with browser(front) as alice, browser(front) as carol:
        wrong = await _sign_in(alice, "alice", "not-her-password")
        assert wrong.status_code == 401 and "milkyway_session" not in alice.cookies
        signed = await _sign_in(alice, "alice", "alice-pw-1")
        assert signed.status_code == 200, signed.text
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("milkyway_session=")
        for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert attribute.lower() in cookie.lower(), cookie
        csrf = signed.json()["csrfToken"]
        assert signed.json()["user"] == "alice" and "token" not in signed.json()
        assert (await _sign_in(carol, "carol", "carol-pw-3")).status_code == 200
        carols_csrf = (await carol.get(f"{API}/session")).json()["csrfToken"]

        # Reads need only the cookie; a reloaded page gets the same CSRF token back.
        assert (await alice.get(f"{API}/whoami")).json()["user"] == "alice"
        again = await alice.get(f"{API}/session")
        assert again.status_code == 200 and again.json()["csrfToken"] == csrf

        # Writes: no token, a wrong one, another session's: refused, nothing written.
        missing = await alice.post(SCALE, json=BODY)
        forged = await alice.post(SCALE, json=BODY, headers={"X-CSRF-Token": "0" * 64})
        foreign = await alice.post(SCALE, json=BODY, headers={"X-CSRF-Token": carols_csrf})
        for refused in (missing, forged, foreign):
            assert refused.status_code == 403, refused.text
            assert refused.json()["type"] == "urn:milkyway:problem:csrf"
            assert "X-CSRF-Token" in refused.json()["detail"]
        assert await _kafka_phx_size(front) == before

        # A dry run checks and answers what it would do, and writes nothing.
        preview = await alice.post(
            SCALE, params={"dryRun": "true"}, json=BODY, headers={"X-CSRF-Token": csrf}
        )
        assert preview.status_code == 200, preview.text
        assert preview.json()["dryRun"] is True
        assert f"size {before} -> 5" in preview.json()["message"]
        assert await _kafka_phx_size(front) == before

        done = await alice.post(SCALE, json=BODY, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200, done.text
        assert await _kafka_phx_size(front) == 5

        # Signing out clears the cookie; the next read is unauthenticated.
        out = await alice.delete(f"{API}/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert (await alice.get(f"{API}/whoami")).status_code == 401

    rows = front.state.audit.search(decision="denied", limit=100)
    assert sum(1 for r in rows if r["actor"] == "alice" and r["result"] == 403) >= 3


async def test_a_forged_cookie_is_unauthenticated(ldap_front: Front) -> None:  # noqa: F811
    async with browser(ldap_front) as client:
        answer = await client.get(f"{API}/whoami", headers={"Cookie": "milkyway_session=a.b.c"})
    assert answer.status_code == 401
    assert "cookie" in answer.json()["detail"]


async def test_dry_run_of_decommission_and_restart_changes_nothing(front: Front) -> None:
    await front.apply(application())
    app_path = f"{API}/namespaces/team-a/applications/stream1"
    async with front.as_user("carol") as carol:
        gone = await carol.delete(app_path, params={"dryRun": "true"})
        restart = await carol.post(
            f"{app_path}/restart", params={"dryRun": "true"}, json={"component": "kafka1"}
        )
        assert gone.status_code == 202 and gone.json()["dryRun"] is True, gone.text
        assert "would be decommissioned" in gone.json()["message"]
        assert restart.status_code == 200 and "dry run" in restart.json()["message"]
        replace = await carol.post(
            f"{app_path}/replace",
            params={"dryRun": "true"},
            json={"member": "stream1-kafka1-phx-0"},
        )
        assert replace.status_code == 200 and "dry run" in replace.json()["message"]
        stranger = await carol.post(
            f"{app_path}/replace", params={"dryRun": "true"}, json={"member": "stream1-x-0"}
        )
        assert stranger.status_code == 422, stranger.text  # checked as the real request is
    async with front.as_user("alice") as alice:
        # An editor may not delete: the dry run says so as the real request would.
        refused = await alice.delete(app_path, params={"dryRun": "true"})
        assert refused.status_code == 403, refused.text
    live = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    assert "deletionTimestamp" not in live["metadata"]
    assert "milkyway.ebay.com/restart" not in (live["metadata"].get("annotations") or {})
    assert "milkyway.ebay.com/replace" not in (live["metadata"].get("annotations") or {})


async def test_console_files_are_served_with_a_strict_policy(front: Front) -> None:
    async with front.http() as client:
        root = await client.get("/")
        page = await client.get("/console/")
        script = await client.get("/console/main.js")
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    assert page.status_code == 200 and "<main" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
