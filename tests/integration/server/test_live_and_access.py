"""The live stream of changes (server-sent events, a watch made as the user), the "what
may I do" access review, and flows as a tree."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore

from .conftest import API, Front, application
from .test_cli_login import GATED, https_server


async def test_the_event_stream_shows_what_the_user_may_list(front: Front, tmp_path: Path) -> None:
    async with https_server(front, tmp_path / "tls") as (url, cert):
        headers = {"Authorization": f"Bearer {front.tokens['alice']}"}
        async with httpx.AsyncClient(base_url=url, verify=str(cert), headers=headers) as alice:
            refused = await alice.get(f"{API}/events/applications", params={"namespace": "team-b"})
            assert refused.status_code == 403
            async with alice.stream(
                "GET", f"{API}/events/applications", params={"namespace": "team-a"}, timeout=60
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith(": watching")
                await front.apply(application("s1", "team-b"), application("s2", "team-a"))
                event: dict[str, str] = {}
                async with asyncio.timeout(30):
                    async for line in lines:
                        if line.startswith(("event:", "data:", "id:")):
                            key, _, value = line.partition(": ")
                            event[key] = value
                        if not line and "data" in event:
                            break
    assert event["event"] == "ADDED"
    assert json.loads(event["data"])["metadata"]["name"] == "s2"


async def test_access_review_answers_for_the_caller(front: Front) -> None:
    async with front.as_user("alice") as alice:
        review = f"{API}/access-review"
        may_create = await alice.post(review, json={"verb": "create", "namespace": "team-a"})
        may_delete = await alice.post(review, json={"verb": "delete", "namespace": "team-a"})
        elsewhere = await alice.post(review, json={"verb": "get", "namespace": "team-b"})
    assert may_create.json()["allowed"] is True
    assert may_delete.json()["allowed"] is False
    assert elsewhere.json()["allowed"] is False


async def test_flow_runs_list_and_tree(front: Front) -> None:
    run = new_run(Catalog(load_flows(GATED)), None, "gated", name="change-2", namespace="team-a")
    await KubeStore(front.admin, "team-a").create(run)
    async with (
        front.as_user("erin") as erin,
        front.as_user("bob") as bob,
        front.as_user("alice") as alice,
    ):
        listed = await erin.get(f"{API}/namespaces/team-a/flowruns")
        assert listed.status_code == 200, listed.text
        assert [r["name"] for r in listed.json()] == ["change-2"]
        tree = await erin.get(f"{API}/namespaces/team-a/flowruns/change-2")
        assert tree.status_code == 200 and tree.json()["flow"] == "gated"
        assert (await bob.get(f"{API}/namespaces/team-a/flowruns")).status_code == 403
        # Approvers decide through the server but write no FlowRun: steering is an editor's.
        cancel = await erin.post(f"{API}/namespaces/team-a/flowruns/change-2/cancel", json={})
        assert cancel.status_code == 403, cancel.text
        cancel = await alice.post(f"{API}/namespaces/team-a/flowruns/change-2/cancel", json={})
        assert cancel.status_code == 200, cancel.text
    requests = (await KubeStore(front.admin, "team-a").get("change-2")).spec.requests
    assert [(r.op, r.actor) for r in requests] == [("cancel", "alice")]
