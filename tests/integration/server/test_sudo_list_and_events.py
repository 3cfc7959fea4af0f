"""Two reads the console needs, through the server as the caller: a user's own sudo
requests with where each stands, and the Kubernetes Events of an Application."""

from __future__ import annotations

import datetime as dt

from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from milkyway.kube.resources import APPLICATION, APPROVAL_POLICY

from .conftest import API, Front, application

POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "sudo-approval", "namespace": "milkyway-system"},
    "spec": {
        "match": {"operations": ["sudo"]},
        "approvals": {"groups": ["approvers-a"], "timeout": "1h"},
        "sudo": {"maxDuration": "1h"},
    },
}
SUDO = f"{API}/namespaces/team-a/sudo"


async def test_each_user_lists_only_their_own_sudo_requests(front: Front) -> None:
    await front.admin.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")
    ask = {"role": "milkyway-admin", "duration": "30m", "reason": "INC-7 cleanup"}
    async with front.as_user("alice") as alice, front.as_user("carol") as carol:
        assert (await alice.get(SUDO)).json() == []
        first = (await alice.post(SUDO, json=ask)).json()
        second = (await alice.post(SUDO, json={**ask, "role": "milkyway-editor"})).json()
        mine = (await carol.post(SUDO, json=ask)).json()
        listed = await alice.get(SUDO)
        assert listed.status_code == 200, listed.text
        assert [(r["grant"], r["role"], r["state"]) for r in listed.json()] == [
            (first["grant"], "milkyway-admin", "Waiting"),
            (second["grant"], "milkyway-editor", "Waiting"),
        ]
        assert all(r["run"] == f"milkyway-sudo-{r['grant']}" for r in listed.json())
        # carol administers team-a, yet the list is of her own requests only.
        assert [r["grant"] for r in (await carol.get(SUDO)).json()] == [mine["grant"]]
        # Another namespace: nothing asked there.
        assert (await alice.get(f"{API}/namespaces/team-b/sudo")).json() == []


def _event(name: str, about: dict[str, str], reason: str, at: dt.datetime) -> Event:
    return Event(
        metadata=ObjectMeta(name=name, namespace="team-a"),
        involvedObject=ObjectReference(**about),
        reason=reason,
        message=f"{reason} happened",
        type="Warning" if reason == "FlowFailed" else "Normal",
        source=EventSource(component="milkyway-operator"),
        firstTimestamp=at,
        lastTimestamp=at,
        count=2,
    )


async def test_events_of_an_application_as_the_caller(front: Front) -> None:
    await front.apply(application("stream1"), application("other"))
    app = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    about = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "name": "stream1",
        "namespace": "team-a",
        "uid": app["metadata"]["uid"],
    }
    at = dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.UTC)
    for event in (
        _event("e1", about, "FlowStarted", at),
        _event("e2", about, "FlowFailed", at + dt.timedelta(minutes=1)),
        _event("e3", {**about, "name": "other", "uid": ""}, "FlowStarted", at),
        _event("e4", {**about, "uid": "an-earlier-stream1"}, "Decommissioned", at),
        _event("e5", {**about, "kind": "Pod"}, "Scheduled", at),
    ):
        await front.admin.create(event, namespace="team-a")
    path = f"{API}/namespaces/team-a/applications/stream1/events"
    async with front.as_user("alice") as alice:
        answer = await alice.get(path)
        assert answer.status_code == 200, answer.text
        assert [(e["reason"], e["type"], e["count"]) for e in answer.json()] == [
            ("FlowFailed", "Warning", 2),
            ("FlowStarted", "Normal", 2),
        ]
        assert answer.json()[0]["source"] == "milkyway-operator"
        assert answer.json()[0]["last"].startswith("2026-12-07T07:01")
        missing = await alice.get(f"{API}/namespaces/team-a/applications/nothing/events")
        assert missing.status_code == 404, missing.text
    async with front.as_user("bob") as bob:  # bob edits team-b only
        refused = await bob.get(path)
        assert refused.status_code == 403, refused.text
