"""What a run said, an Application's health and its notification deliveries through the
server, read as the caller (RBAC decides, a user without rights is refused and audited);
and the request id that links a change, the runs it caused and the audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

from lightkube.types import PatchType
from tests.polling import eventually

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.resources import APPLICATION
from milkyway.model.flow import Attempt, NodeStatus
from milkyway.notify.center import NOTIFICATION_LABEL, SERVICE_LABEL, TRIGGER_LABEL
from milkyway.operator.health.schedule import HEALTH_LABEL
from milkyway.security.change_stamp import REQUEST_ID, stamped_request, stamped_user
from milkyway.server.audit.runs import RunRecorder

from .conftest import API, Front, application

FLOW = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: two-steps, namespace: team-a}
spec:
  parameters:
    trigger: {type: string, default: ""}
    service: {type: string, default: ""}
    recipients: {type: array, default: []}
  steps:
    - name: deliver
      action: k8s.wait
    - name: confirm
      approval: {groups: [platform], timeout: 600}
"""
CATALOG = Catalog(load_flows(FLOW))
APPS_A = f"{API}/namespaces/team-a/applications"


async def _run(
    front: Front,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    requested_by: str = "",
) -> None:
    run = new_run(
        CATALOG,
        None,
        "two-steps",
        params,
        requested_by=requested_by,
        name=name,
        namespace="team-a",
        labels=labels,
        annotations=annotations,
    )
    deliver = NodeStatus(
        path="deliver",
        name="deliver",
        kind="task",
        phase="Retrying",
        started_at=100.0,
        message="connection refused by smtp 127.0.0.1:2525",
        attempts=[
            Attempt(
                n=1,
                phase="Failed",
                started_at=100.0,
                finished_at=101.5,
                error="Retryable",
                message="connection refused by smtp 127.0.0.1:2525",
                actor="engine-1",
            )
        ],
    )
    confirm = NodeStatus(path="confirm", name="confirm", kind="approval", phase="Pending")
    run.status.nodes = {**run.status.nodes, "deliver": deliver, "confirm": confirm}
    run.status.phase = "Running"
    await KubeStore(front.admin, "team-a").create(run)


async def _refused(front: Front, path: str) -> None:
    for user in ("bob", "dave"):  # an editor of another namespace; a user with no binding
        async with front.as_user(user) as client:
            answer = await client.get(path)
            assert answer.status_code == 403, (user, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
    denied = await asyncio.to_thread(front.state.audit.search, actor="dave", decision="denied")
    assert any(r["target"] == f"GET {path}" for r in denied)


async def test_step_logs_of_a_run_as_the_caller(front: Front) -> None:
    await _run(front, "change-1")
    path = f"{API}/namespaces/team-a/flowruns/change-1/logs"
    async with front.as_user("alice") as alice:
        logs = await alice.get(path)
        assert logs.status_code == 200, logs.text
        body = logs.json()
        assert body["phase"] == "Running"
        first = body["steps"][0]
        assert (first["path"], first["phase"]) == ("deliver", "Retrying")
        assert first["message"] == "connection refused by smtp 127.0.0.1:2525"
        assert first["attempts"][0] == {
            "n": 1,
            "phase": "Failed",
            "startedAt": 100.0,
            "finishedAt": 101.5,
            "error": "Retryable",
            "message": "connection refused by smtp 127.0.0.1:2525",
            "actor": "engine-1",
        }
        assert {s["path"] for s in body["steps"]} >= {"deliver", "confirm"}
        one = await alice.get(path, params={"step": "confirm"})
        assert [s["path"] for s in one.json()["steps"]] == ["confirm"]
        unknown = await alice.get(path, params={"step": "nope"})
        assert unknown.status_code == 422 and "deliver" in unknown.json()["detail"]
    await _refused(front, path)


async def test_health_report_and_history_as_the_caller(front: Front) -> None:
    async with front.as_user("alice") as alice:
        assert (await alice.post(APPS_A, json=application())).status_code == 201
        before = await alice.get(f"{APPS_A}/stream1/health")
        assert before.status_code == 200, before.text
        assert before.json()["status"] == "Unknown" and before.json()["history"] == []
    health = {
        "status": "Degraded",
        "checkedAt": "2026-12-07T03:15:41Z",
        "run": "stream1-health-1796613341",
        "since": "2026-12-07T03:15:39Z",
        "findings": [
            {
                "component": "zookeeper1",
                "zone": "phx",
                "member": "stream1-zookeeper1-phx-0",
                "check": "member-ready",
                "severity": "Degraded",
                "observed": "CrashLoopBackOff (restarts 3)",
                "since": "2026-12-07T03:15:39Z",
            }
        ],
        "history": [
            {"checkedAt": "2026-12-07T03:15:41Z", "status": "Degraded", "findings": 1},
            {"checkedAt": "2026-12-07T03:14:41Z", "status": "Healthy", "findings": 0},
        ],
    }
    await front.admin.patch(
        APPLICATION.Status,
        "stream1",
        {"status": {"health": health}},
        namespace="team-a",
        patch_type=PatchType.MERGE,
    )
    await _run(front, "stream1-health-1796613341", labels={HEALTH_LABEL: "stream1"})
    await _run(front, "unrelated-run")
    async with front.as_user("alice") as alice:
        report = (await alice.get(f"{APPS_A}/stream1/health")).json()
    assert report["status"] == "Degraded"
    assert report["report"]["findings"] == health["findings"]
    assert "history" not in report["report"]
    assert [h["status"] for h in report["history"]] == ["Degraded", "Healthy"]
    assert [r["name"] for r in report["runs"]] == ["stream1-health-1796613341"]
    await _refused(front, f"{APPS_A}/stream1/health")


async def test_notification_deliveries_as_the_caller(front: Front) -> None:
    labels = {NOTIFICATION_LABEL: "stream1", TRIGGER_LABEL: "health-degraded"}
    labels[SERVICE_LABEL] = "email"
    params = {"trigger": "health-degraded", "service": "email", "recipients": ["oncall@x"]}
    await _run(front, "notify-1", labels=labels, params=params)
    await _run(front, "not-a-delivery")
    path = f"{API}/namespaces/team-a/notifications"
    async with front.as_user("alice") as alice:
        rows = (await alice.get(path)).json()
        assert [r["name"] for r in rows] == ["notify-1"]
        row = rows[0]
        assert (row["application"], row["trigger"], row["service"]) == (
            "stream1",
            "health-degraded",
            "email",
        )
        assert (row["status"], row["recipients"], row["attempts"]) == ("Retrying", "oncall@x", "1")
        assert row["detail"] == "connection refused by smtp 127.0.0.1:2525"
        other = await alice.get(path, params={"application": "orders"})
        assert other.status_code == 200 and other.json() == []
    await _refused(front, path)


async def test_a_request_links_its_change_runs_and_audit_both_ways(front: Front) -> None:
    async with front.as_user("alice") as alice:
        assert (await alice.post(APPS_A, json=application())).status_code == 201
        scaled = await alice.post(
            f"{APPS_A}/stream1/scale",
            json={"component": "kafka1", "zone": "phx", "size": 4},
            headers={"X-Request-Id": "scale-by-alice-0001"},
        )
        assert scaled.status_code == 200, scaled.text
        assert scaled.json()["requestId"] == "scale-by-alice-0001"
    app = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    key = await front.state.decision_key()
    assert stamped_request(key, app) == "scale-by-alice-0001"
    # The operator copies the id it verified onto the runs the change causes.
    await _run(front, "scale-out-1", annotations={REQUEST_ID: "scale-by-alice-0001"})
    await _run(front, "other-run", annotations={REQUEST_ID: "someone-elses-0002"})
    async with front.as_user("alice") as alice:
        records = await alice.get(f"{API}/audit", params={"requestId": "scale-by-alice-0001"})
        assert [r["action"] for r in records.json()["items"]] == ["scale"]
        caused = await alice.get(
            f"{API}/namespaces/team-a/flowruns", params={"requestId": "scale-by-alice-0001"}
        )
        assert [r["name"] for r in caused.json()] == ["scale-out-1"]
        assert caused.json()[0]["requestId"] == "scale-by-alice-0001"
        tree = (await alice.get(f"{API}/namespaces/team-a/flowruns/scale-out-1")).json()
        assert tree["requestId"] == "scale-by-alice-0001"
        back = (await alice.get(f"{API}/namespaces/team-a/flowruns/scale-out-1/audit")).json()
        assert back["requestId"] == "scale-by-alice-0001"
        assert [(r["actor"], r["action"]) for r in back["items"]] == [("alice", "scale")]
    # Another user reads the run but only their own records of its request.
    async with front.as_user("carol") as carol:
        theirs = (await carol.get(f"{API}/namespaces/team-a/flowruns/scale-out-1/audit")).json()
        assert theirs == {"requestId": "scale-by-alice-0001", "items": []}
    await _refused(front, f"{API}/namespaces/team-a/flowruns/scale-out-1/audit")


async def test_restart_and_replace_through_the_server_are_stamped(front: Front) -> None:
    async with front.as_user("alice") as alice:
        assert (await alice.post(APPS_A, json=application())).status_code == 201
        restarted = await alice.post(
            f"{APPS_A}/stream1/restart",
            json={"component": "kafka1"},
            headers={"X-Request-Id": "restart-by-alice-01"},
        )
        assert restarted.status_code == 200, restarted.text
    key = await front.state.decision_key()
    app = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    assert stamped_user(key, app) == "alice"
    assert stamped_request(key, app) == "restart-by-alice-01"
    # A restart request added around the server (kubectl) leaves a stamp that no longer holds.
    annotations = app["metadata"]["annotations"]
    restart = annotations["milkyway.ebay.com/restart"] + ",zookeeper1@2026-12-07T06:00:00Z"
    await front.admin.patch(
        APPLICATION,
        "stream1",
        {"metadata": {"annotations": {"milkyway.ebay.com/restart": restart}}},
        namespace="team-a",
        patch_type=PatchType.MERGE,
    )
    app = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    assert stamped_user(key, app) is None and stamped_request(key, app) is None


async def test_each_run_a_request_caused_is_recorded_once(front: Front) -> None:
    request_id = "scale-by-alice-0003"
    await _run(front, "caused-1", annotations={REQUEST_ID: request_id}, requested_by="alice")
    await _run(front, "uncaused-1", requested_by="milkyway-operator")
    audit = front.state.audit

    async def recorded() -> list[dict[str, Any]]:
        return await asyncio.to_thread(audit.search, request_id=request_id)

    # Two replicas watch with the server's own account, then one restarts: one record.
    for replicas in (2, 1):
        recorders = [RunRecorder(front.state.clients.own(), audit) for _ in range(replicas)]
        tasks = [asyncio.create_task(r.run()) for r in recorders]
        try:
            await eventually(recorded, within=60, what="the caused run's audit record")
            await eventually(
                lambda rs=recorders: all(r.settled() for r in rs), within=60, what="synced"
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    rows = await recorded()
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("alice", "flowrun", "FlowRun team-a/caused-1")
    ]
    everything = await asyncio.to_thread(audit.search, action="flowrun")
    assert [r["target"] for r in everything] == ["FlowRun team-a/caused-1"]
    findings, _, _ = await asyncio.to_thread(audit.verify)
    assert findings == []
    async with front.as_user("alice") as alice:
        back = (await alice.get(f"{API}/namespaces/team-a/flowruns/caused-1/audit")).json()
    assert [r["action"] for r in back["items"]] == ["flowrun"]
