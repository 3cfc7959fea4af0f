"""The planner on lost nodes and failed disks (grace period, announcement before action,
local against network-attached volumes, members holding data, approval) and on failed
flows (exponential back-off, the reason in the status)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milkyway.components import builtin_component_types
from milkyway.model.application import LostMember
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve
from milkyway.operator.planner import RunningFlow, plan
from milkyway.operator.planner.contract import backoff_delay
from milkyway.operator.reconciler import running_flows
from milkyway.render.zone import render_zone

_spec = importlib.util.spec_from_file_location(
    "planner_world", Path(__file__).with_name("planner_world.py")
)
assert _spec is not None and _spec.loader is not None
world = importlib.util.module_from_spec(_spec)
sys.modules["planner_world"] = world
_spec.loader.exec_module(world)
Member = world.Member

TYPES = builtin_component_types()
LOST_AT = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
LOST = "2026-06-01T12:00:00Z"


def _app(size: int = 3, replacement: dict[str, Any] | None = None) -> Any:
    spec: dict[str, Any] = {
        "components": [
            {
                "name": "zookeeper1",
                "version": "3.4.7",
                "regions": [{"name": "NA", "zones": [{"name": "phx", "size": size}]}],
            }
        ]
    }
    if replacement is not None:
        spec["replacement"] = replacement
    return application_from_data(
        {
            "apiVersion": "milkyway.ebay.com/v1",
            "kind": "Application",
            "metadata": {"name": "app", "namespace": "ns"},
            "spec": spec,
        }
    )


def _plan(
    app: Any, members: list[Any], now: datetime, *, local: bool = True, types: Any = TYPES
) -> Any:
    resolved = resolve(app, types)
    desired = {("zookeeper1", "phx"): render_zone(resolved, "zookeeper1", "phx")}
    observed = {
        ("zookeeper1", "phx"): world.live_zone(
            "zookeeper1", "phx", desired[("zookeeper1", "phx")], members, local_volumes=local
        )
    }
    return plan(app, resolved, desired, observed, [], now=now, clusters={})


def _announce(app: Any, result: Any) -> Any:
    """The operator wrote ``result``'s status: the next plan sees its decisions."""
    lost = [LostMember.model_validate(e) for e in result.status.get("lostMembers") or []]
    return app.model_copy(update={"status": app.status.model_copy(update={"lost_members": lost})})


def _condition(result: Any, kind: str) -> dict[str, Any]:
    return next(c for c in result.status["conditions"] if c["type"] == kind)


def test_nothing_is_replaced_within_the_grace_period_and_the_decision_is_shown() -> None:
    app = _app()
    members = [Member(node_lost=LOST), Member(), Member()]
    result = _plan(app, members, LOST_AT + timedelta(seconds=599))
    assert result.start == ()
    assert result.requeue_after is not None and result.requeue_after <= 1.0
    (entry,) = result.status["lostMembers"]
    assert entry["action"] == "replace-volume" and entry["node"] == "node-0"
    assert entry["at"] == "2026-06-01T12:10:00Z"
    lost = _condition(result, "MemberLost")
    assert lost["status"] == "True"
    assert "node node-0 lost since 2026-06-01T12:00:00Z" in lost["message"]
    assert "at 2026-06-01T12:10:00Z unless it recovers" in lost["message"]


def test_a_due_replacement_waits_until_its_decision_is_in_the_status() -> None:
    app = _app()
    members = [Member(node_lost=LOST), Member(), Member()]
    later = LOST_AT + timedelta(seconds=601)
    first = _plan(app, members, later)
    assert first.start == () and first.requeue_after == 1.0
    (request,) = _plan(_announce(app, first), members, later).start
    assert request.operation == "replace-member"
    (item,) = request.params["members"]
    assert (item["name"], item["action"], item["lostNode"]) == (
        "app-zookeeper1-phx-0",
        "replace-volume",
        "node-0",
    )
    assert request.params["approval"] is False


def test_grace_period_comes_from_the_application_then_the_type() -> None:
    app = _app(replacement={"gracePeriodSeconds": 30})
    members = [Member(node_lost=LOST), Member(), Member()]
    result = _plan(app, members, LOST_AT + timedelta(seconds=31))
    assert result.status["lostMembers"][0]["at"] == "2026-06-01T12:00:30Z"
    assert _plan(_announce(app, result), members, LOST_AT + timedelta(seconds=31)).start


def test_network_attached_members_are_rescheduled_keeping_their_volume() -> None:
    app = _app()
    members = [Member(node_lost=LOST), Member(), Member()]
    later = LOST_AT + timedelta(seconds=601)
    first = _plan(app, members, later, local=False)
    assert first.status["lostMembers"][0]["action"] == "reschedule"
    (request,) = _plan(_announce(app, first), members, later, local=False).start
    assert request.params["members"][0]["action"] == "reschedule"


def test_members_holding_data_stay_a_majority() -> None:
    app = _app()
    later = LOST_AT + timedelta(seconds=601)
    # Two lost: their volumes still hold data, so one may go (3 -> 2 holders).
    members = [Member(node_lost=LOST), Member(node_lost=LOST), Member()]
    first = _plan(app, members, later)
    (request,) = _plan(_announce(app, first), members, later).start
    assert [m["name"] for m in request.params["members"]] == ["app-zookeeper1-phx-0"]
    # One member already on a fresh, empty volume: replacing a lost one would leave 1 of 3.
    fresh = Member(fresh_volume=True, state="down", since="2026-06-01T12:10:00Z")
    members = [Member(node_lost=LOST), fresh, Member()]
    first = _plan(app, members, later)
    second = _plan(_announce(app, first), members, later)
    assert second.start == ()
    assert "holding data" in _condition(second, "MemberLost")["message"]


def test_a_lone_member_is_never_replaced_automatically() -> None:
    app = _app(size=1)
    members = [Member(node_lost=LOST)]
    later = LOST_AT + timedelta(seconds=601)
    first = _plan(app, members, later)
    assert _plan(_announce(app, first), members, later).start == ()


def test_approval_policy_adds_the_approval_step_params() -> None:
    policy = {"requireApproval": True, "approvers": {"groups": ["dba"]}}
    app = _app(replacement=policy)
    members = [Member(node_lost=LOST), Member(), Member()]
    later = LOST_AT + timedelta(seconds=601)
    first = _plan(app, members, later)
    (request,) = _plan(_announce(app, first), members, later).start
    assert request.params["approval"] is True
    assert request.params["approvers"] == {"users": [], "groups": ["dba"]}
    unnamed = _app(replacement={"requireApproval": True})
    first = _plan(unnamed, members, later)
    second = _plan(_announce(unnamed, first), members, later)
    assert second.start == ()
    assert "spec.replacement.approvers" in _condition(second, "MemberLost")["message"]


def test_a_critical_disk_reported_by_the_agent_replaces_the_member_after_the_grace() -> None:
    app = _app()
    members = [Member(disk_alert=("Critical", LOST)), Member(), Member()]
    early = _plan(app, members, LOST_AT + timedelta(seconds=599))
    assert early.start == ()
    (entry,) = early.status["lostMembers"]
    assert (entry["reason"], entry["action"]) == ("disk critical (agent)", "replace-volume")
    later = LOST_AT + timedelta(seconds=601)
    first = _plan(app, members, later)
    (request,) = _plan(_announce(app, first), members, later).start
    assert request.operation == "replace-member"
    assert [m["name"] for m in request.params["members"]] == ["app-zookeeper1-phx-0"]
    assert request.params["members"][0]["diskAlert"] is True
    assert request.params["approval"] is False
    guarded = _app(replacement={"requireApproval": True, "approvers": {"users": ["alice"]}})
    first = _plan(guarded, members, later)
    (request,) = _plan(_announce(guarded, first), members, later).start
    assert request.params["approval"] is True
    # A warning is only an alert; so is a critical disk when the type says so.
    warned = [Member(disk_alert=("Warning", LOST)), Member(), Member()]
    assert _plan(app, warned, later).status.get("lostMembers") in (None, [])
    zookeeper = TYPES["zookeeper"]
    agent = zookeeper.spec.agent.model_copy(update={"on_critical_disk": "alert"})
    alerting = TYPES.with_types(
        [zookeeper.model_copy(update={"spec": zookeeper.spec.model_copy(update={"agent": agent})})]
    )
    only_alert = _plan(app, members, later, types=alerting)
    assert only_alert.start == () and only_alert.status.get("lostMembers") in (None, [])
    # The Application's policy overrides the type's, either way.
    told = _app(replacement={"onCriticalDisk": "alert"})
    assert _plan(told, members, later).status.get("lostMembers") in (None, [])
    replacing = _app(replacement={"onCriticalDisk": "replace"})
    assert _plan(replacing, members, later, types=alerting).status["lostMembers"]


def test_critical_disks_never_leave_fewer_members_holding_data_than_a_quorum() -> None:
    app = _app()
    later = LOST_AT + timedelta(seconds=601)
    full = Member(disk_alert=("Critical", LOST))
    fresh = Member(fresh_volume=True, state="down", since="2026-06-01T12:10:00Z")
    members = [full, fresh, Member()]
    first = _plan(app, members, later)
    second = _plan(_announce(app, first), members, later)
    assert second.start == ()
    assert "holding data" in _condition(second, "MemberLost")["message"]


def test_remediation_leaves_lost_members_to_the_lost_member_rule() -> None:
    app = _app()
    app.metadata.annotations = {"milkyway.ebay.com/remediate-after": "0"}
    members = [Member(node_lost=LOST), Member(), Member()]
    result = _plan(app, members, LOST_AT + timedelta(seconds=60))
    assert result.start == ()


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_delay(n, 30, 200) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


def test_failed_flows_back_off_and_say_why() -> None:
    finished = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    runs = [
        {
            "metadata": {
                "name": f"run-{attempt}",
                "creationTimestamp": f"2026-06-01T11:5{attempt}:00Z",
                "labels": {
                    "milkyway.ebay.com/component": "zookeeper1",
                    "milkyway.ebay.com/attempt": str(attempt),
                },
            },
            "spec": {"flow": "milkyway-provision"},
            "status": {
                "phase": "Failed",
                "finishedAt": finished,
                "nodes": {"zones/0/apply": {"phase": "Failed", "message": "422 cpu limit"}},
            },
        }
        for attempt in (1, 2, 3)
    ]
    (latest,) = running_flows(runs, 10.0, 1000.0)
    assert (latest.name, latest.attempt, latest.retry_at) == ("run-3", 3, "2026-06-01T12:00:40Z")
    assert "422 cpu limit" in latest.message
    app = _app()
    resolved = resolve(app, TYPES)
    desired = {("zookeeper1", "phx"): render_zone(resolved, "zookeeper1", "phx")}
    early = plan(
        app, resolved, desired, {}, [latest], now=LOST_AT + timedelta(seconds=39), clusters={}
    )
    assert early.start == () and early.requeue_after == 1.0
    failed = _condition(early, "FlowFailed")
    assert failed["status"] == "True" and "422 cpu limit" in failed["message"]
    assert early.status["failedFlows"][0]["retryAt"] == "2026-06-01T12:00:40Z"
    (retry,) = plan(
        app, resolved, desired, {}, [latest], now=LOST_AT + timedelta(seconds=40), clusters={}
    ).start
    assert retry.attempt == 4


def test_a_run_without_an_end_time_is_not_delayed() -> None:
    run = RunningFlow("r", "milkyway-provision", "zookeeper1", "Failed")
    app = _app()
    resolved = resolve(app, TYPES)
    desired = {("zookeeper1", "phx"): render_zone(resolved, "zookeeper1", "phx")}
    assert plan(app, resolved, desired, {}, [run], now=LOST_AT, clusters={}).start


class _DeletingClient:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def delete(self, _resource: Any, name: str, *, namespace: str) -> None:
        assert namespace == "ns"
        self.deleted.append(name)


async def test_finished_runs_beyond_the_history_limit_are_deleted() -> None:
    from milkyway.operator.reconciler import Caches, Reconciler

    def run(name: str, created: str, component: str, phase: str, done: bool) -> dict[str, Any]:
        labels = {"milkyway.ebay.com/component": component}
        if done:
            labels["milkyway.ebay.com/flow-done"] = "true"
        return {
            "metadata": {"name": name, "creationTimestamp": created, "labels": labels},
            "status": {"phase": phase},
        }

    runs = [
        run("kafka-old", "2026-06-01T10:00:00Z", "kafka", "Failed", True),
        *(run(f"zk-{i}", f"2026-06-01T11:0{i}:00Z", "zk", "Succeeded", True) for i in range(5)),
        run("zk-releasing", "2026-06-01T11:30:00Z", "zk", "Failed", False),
        run("zk-running", "2026-06-01T11:40:00Z", "zk", "Running", False),
    ]
    client = _DeletingClient()
    caches = Caches(applications={}, component_types={}, runs_of=lambda key: runs)
    reconciler = Reconciler(
        client,  # type: ignore[arg-type]
        caches,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        history_limit=3,
    )
    await reconciler._prune_history(("ns", "app"))
    # Kept: each component's latest finished (zk-4, kafka-old), then the newest (zk-3).
    assert sorted(client.deleted) == ["zk-0", "zk-1", "zk-2"]
