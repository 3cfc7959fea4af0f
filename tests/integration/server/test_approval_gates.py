"""Approval gates of an ApprovalPolicy, decided through the real server with real
sign-in, driven by a real engine on the simulated management cluster: the requester
cannot approve, one approver counts once, N of M, a decision written on the FlowRun
directly does not count, the timeout applies the default as ``system:timeout``, and a
rejection stops the flow before its disruptive step."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine, add_request, new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.flows.tasks import REGISTRY, TaskContext
from milkyway.kube.decision_key import decision_key
from milkyway.kube.resources import APPLICATION, APPROVAL_POLICY
from milkyway.model.approval_policy import ApprovalPolicy, Gate, start_hold
from milkyway.model.flow import FlowRun
from milkyway.operator.approval_gates import gate_step
from milkyway.security.change_stamp import stamped_user

from .conftest import API, Front, application, bind, start_front, stop_front
from .directory import running_directory
from .test_ldap import ldap_settings

WORK = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: work, namespace: team-a}
spec:
  steps:
    - name: disrupt
      action: test.disrupt
"""


class _NoParams(BaseModel):
    model_config = {"extra": "forbid"}


def _registry(touched: list[str]) -> Any:
    registry = REGISTRY.copy()

    async def disrupt(params: _NoParams, ctx: TaskContext) -> dict[str, str]:
        touched.append(ctx.run_id)
        return {}

    registry.task("test.disrupt", _NoParams)(disrupt)
    return registry


def _gate(required: int = 2, timeout: float = 600.0, default: str = "reject") -> Any:
    return gate_step(
        Gate(
            policy="team-a/prod-changes",
            users=("bob", "dave"),
            groups=("approvers-a",),
            required=required,
            timeout=timeout,
            default=default,
        )
    )


@contextlib.asynccontextmanager
async def engine_on(front: Front, touched: list[str]) -> AsyncIterator[Engine]:
    key = await decision_key(front.admin)
    engine = Engine(
        KubeStore(front.admin, "team-a"),
        Catalog(load_flows(WORK)),
        registry=_registry(touched),
        poll_interval=0.2,
        decision_key=key,
    )
    engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def _submit(engine: Engine, name: str, **gate: Any) -> None:
    run = new_run(
        engine.catalog,
        engine.registry,
        "work",
        name=name,
        namespace="team-a",
        requested_by="alice",
        gates=[_gate(**gate)],
    )
    await engine.store.create(run)
    engine._wakeup.set()


async def _until(front: Front, name: str, check: Any, within: float = 60.0) -> FlowRun:
    store = KubeStore(front.admin, "team-a")
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run = await store.get(name)
        if check(run):
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {name} never got there: {run.status.model_dump()}")
        await asyncio.sleep(0.2)


GATE = "approval-prod-changes"


def _gate_node(run: FlowRun) -> Any:
    return run.status.nodes.get(GATE)


def _waiting(run: FlowRun) -> bool:
    node = _gate_node(run)
    return node is not None and node.phase == "Waiting"


async def _decide(front: Front, user: str, run: str, decision: str = "approve") -> Any:
    async with front.as_user(user) as http:
        return await http.post(
            f"{API}/namespaces/team-a/flowruns/{run}/decisions/{decision}",
            json={"step": GATE, "reason": f"{user} says {decision}"},
        )


@pytest.fixture
async def approvers(front: Front) -> Front:
    await front.apply(
        bind("team-a", "milkyway-approver", user="bob"),
        bind("team-a", "milkyway-approver", group="team-a"),
        bind("team-a", "milkyway-viewer", user="dave"),
    )
    return front


async def test_two_of_m_through_the_server(approvers: Front) -> None:
    front = approvers
    touched: list[str] = []
    async with engine_on(front, touched) as engine:
        await _submit(engine, "change-1")
        await _until(front, "change-1", _waiting)
        assert touched == []

        # The requester is an approver by RBAC (team-a) yet may not approve their change.
        answer = await _decide(front, "alice", "change-1")
        assert answer.status_code == 403, answer.text
        assert "requested run change-1 and may not approve" in answer.json()["detail"]

        # dave is named by the policy and may read the run, but holds no approve right.
        answer = await _decide(front, "dave", "change-1")
        assert answer.status_code == 403
        assert "milkyway-approver" in answer.json()["detail"]

        # An editor writes a decision naming bob on the FlowRun itself: it does not count.
        as_alice = front.state.clients.as_user("alice", ["team-a"])
        await add_request(KubeStore(as_alice, "team-a"), "change-1", "approve", "bob", step=GATE)
        forged = await _until(
            front, "change-1", lambda r: "only through milkyway server" in r.status.message
        )
        assert _gate_node(forged).phase == "Waiting"
        assert not _gate_node(forged).approvals

        answer = await _decide(front, "bob", "change-1")
        assert answer.status_code == 200, answer.text
        run = await _until(front, "change-1", lambda r: bool(_gate_node(r).approvals))
        assert _gate_node(run).phase == "Waiting"
        assert "1 of 2 approvals (bob)" in _gate_node(run).message

        answer = await _decide(front, "bob", "change-1")
        assert answer.status_code == 409
        assert "counts once" in answer.json()["detail"]
        assert touched == []

        answer = await _decide(front, "erin", "change-1")
        assert answer.status_code == 200, answer.text
        run = await _until(front, "change-1", lambda r: r.status.phase == "Succeeded")
        node = _gate_node(run)
        assert node.decision is not None and node.decision.by == "bob,erin"
        assert touched == ["change-1"]
    rows = front.state.audit.search(action="decide_flowrun", limit=50)
    assert [(r["actor"], r["result"]) for r in rows] == [
        ("alice", 403),
        ("dave", 403),
        ("bob", 200),
        ("bob", 409),
        ("erin", 200),
    ]


async def test_a_rejection_stops_the_flow_before_it_disrupts(approvers: Front) -> None:
    front = approvers
    touched: list[str] = []
    async with engine_on(front, touched) as engine:
        await _submit(engine, "change-2")
        await _until(front, "change-2", _waiting)
        answer = await _decide(front, "bob", "change-2", "reject")
        assert answer.status_code == 200, answer.text
        run = await _until(front, "change-2", lambda r: r.status.phase == "Failed")
        assert run.status.nodes["disrupt"].phase == "Omitted"
        assert _gate_node(run).decision.by == "bob"
        await asyncio.sleep(1.0)
        assert touched == []


@pytest.mark.parametrize(("default", "phase"), [("reject", "Failed"), ("approve", "Succeeded")])
async def test_a_timeout_applies_the_default(approvers: Front, default: str, phase: str) -> None:
    front = approvers
    touched: list[str] = []
    async with engine_on(front, touched) as engine:
        await _submit(engine, "change-3", timeout=2.0, default=default)
        run = await _until(front, "change-3", lambda r: r.status.phase == phase)
        assert _gate_node(run).decision.by == "system:timeout"
        assert touched == (["change-3"] if default == "approve" else [])


@pytest.fixture
async def ldap_front(tmp_path: Path) -> AsyncIterator[Front]:
    with running_directory(tmp_path / "ldap") as directory:
        front, _ = await start_front(tmp_path, ldap=ldap_settings(directory.url))
        try:
            yield front
        finally:
            await stop_front(front)


async def _session(front: Front, user: str, password: str) -> str:
    async with front.http() as http:
        answer = await http.post(f"{API}/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


async def test_ldap_users_decide_as_who_they_proved_to_be(ldap_front: Front) -> None:
    front = ldap_front
    await front.apply(bind("team-a", "milkyway-approver", group="team-a"))
    touched: list[str] = []
    async with engine_on(front, touched) as engine:
        run = new_run(
            engine.catalog,
            engine.registry,
            "work",
            name="change-ldap",
            namespace="team-a",
            requested_by="alice",
            gates=[
                gate_step(
                    Gate(
                        policy="team-a/prod-changes",
                        users=(),
                        groups=("team-a",),
                        required=1,
                        timeout=600.0,
                        default="reject",
                    )
                )
            ],
        )
        await engine.store.create(run)
        await _until(front, "change-ldap", _waiting)
        alice = await _session(front, "alice", "alice-pw-1")
        carol = await _session(front, "carol", "carol-pw-3")
        path = f"{API}/namespaces/team-a/flowruns/change-ldap/decisions/approve"
        async with front.http(alice) as http:
            answer = await http.post(path, json={"step": GATE})
        assert answer.status_code == 403
        assert "requested run change-ldap" in answer.json()["detail"]
        async with front.http(carol) as http:
            answer = await http.post(path, json={"step": GATE, "reason": "checked"})
        assert answer.status_code == 200, answer.text
        done = await _until(front, "change-ldap", lambda r: r.status.phase == "Succeeded")
        assert _gate_node(done).decision.by == "carol"
        assert touched == ["change-ldap"]
    rows = front.state.audit.search(action="decide_flowrun", limit=10)
    assert [(r["actor"], r["auth_method"], r["result"]) for r in rows] == [
        ("alice", "session/ldap", 403),
        ("carol", "session/ldap", 200),
    ]


async def test_the_server_stamps_who_changed_an_application(front: Front) -> None:
    key = await decision_key(front.admin)
    async with front.as_user("alice") as alice:
        created = await alice.post(
            f"{API}/namespaces/team-a/applications", json=application("stamped")
        )
        assert created.status_code == 201, created.text
        stored = await front.admin.get(APPLICATION, "stamped", namespace="team-a")
        assert stamped_user(key, stored.to_dict()) == "alice"
        scaled = await alice.post(
            f"{API}/namespaces/team-a/applications/stamped/scale",
            json={"component": "kafka1", "zone": "phx", "size": 5},
        )
        assert scaled.status_code == 200, scaled.text
    stored = (await front.admin.get(APPLICATION, "stamped", namespace="team-a")).to_dict()
    assert stamped_user(key, stored) == "alice"
    # A change made around the server (kubectl) leaves a stamp that no longer holds.
    stored["spec"]["components"][-1].setdefault("params", {})["x"] = "1"
    assert stamped_user(key, stored) is None
    forged = dict(stored["metadata"]["annotations"])
    forged["milkyway.ebay.com/changed-by"] = "bob"
    assert (
        stamped_user(key, {**stored, "metadata": {**stored["metadata"], "annotations": forged}})
        is None
    )


async def test_restart_and_replace_requests_are_stamped_with_the_requester(front: Front) -> None:
    """Restart and replace requests start disruptive flows too: the server stamps them with
    the caller, so the requester-exclusion rule refuses the caller's approval of them."""
    key = await decision_key(front.admin)
    await front.apply(application("requests"))
    base = f"{API}/namespaces/team-a/applications/requests"

    async def stored() -> dict[str, Any]:
        return (await front.admin.get(APPLICATION, "requests", namespace="team-a")).to_dict()

    assert stamped_user(key, await stored()) is None
    async with front.as_user("alice") as alice:
        answer = await alice.post(f"{base}/restart", json={"component": "kafka1"})
        assert answer.status_code == 200, answer.text
    app = await stored()
    assert app["metadata"]["annotations"]["milkyway.ebay.com/restart"].startswith("kafka1@")
    assert stamped_user(key, app) == "alice"

    async with front.as_user("carol") as carol:
        answer = await carol.post(f"{base}/replace", json={"member": "requests-kafka1-phx-0"})
        assert answer.status_code == 200, answer.text
    app = await stored()
    assert "requests-kafka1-phx-0@" in app["metadata"]["annotations"]["milkyway.ebay.com/replace"]
    assert stamped_user(key, app) == "carol"

    # A request added around the server (kubectl) does not inherit carol's stamp.
    annotations = app["metadata"]["annotations"]
    annotations["milkyway.ebay.com/restart"] += ",zookeeper1@2099-01-01T00:00:00Z"
    await front.admin.replace(APPLICATION.from_dict(app), namespace="team-a")
    assert stamped_user(key, await stored()) is None

    # A refused request writes nothing, stamp included.
    async with front.as_user("alice") as alice:
        answer = await alice.post(f"{base}/replace", json={"member": "elsewhere-0"})
        assert answer.status_code == 422, answer.text
    assert stamped_user(key, await stored()) is None


FROZEN = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "release-freeze", "namespace": "team-a"},
    "spec": {
        "match": {"operations": ["upgrade"]},
        "freezes": [
            {"start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z", "reason": "frozen"}
        ],
        "overrideGroups": ["approvers-a"],
    },
}


async def test_an_override_lifts_a_freeze_with_a_reason(front: Front) -> None:
    await front.apply(application("held"))
    await front.admin.create(APPROVAL_POLICY.from_dict(FROZEN), namespace="team-a")
    path = f"{API}/namespaces/team-a/applications/held/window-override"
    body = {"policy": "team-a/release-freeze", "reason": "INC-42 hotfix", "duration": "2h"}

    def hold_for(policy: ApprovalPolicy) -> Any:
        return start_hold(
            [policy],
            operation="rolling-upgrade",
            flow="milkyway-rolling-upgrade",
            namespace="team-a",
            component_type="kafka",
            labels={},
            now=dt.datetime.now(dt.UTC),
            application="team-a/held",
        )

    async def stored() -> ApprovalPolicy:
        raw = await front.admin.get(APPROVAL_POLICY, "release-freeze", namespace="team-a")
        return ApprovalPolicy.model_validate(raw.to_dict())

    assert hold_for(await stored()) is not None
    # alice edits team-a but holds no approve right; carol may approve but is in no
    # override group; nobody may write the policy's status themselves.
    async with front.as_user("alice") as alice, front.as_user("carol") as carol:
        answer = await alice.post(path, json=body)
        assert answer.status_code == 403 and "milkyway-approver" in answer.json()["detail"]
        answer = await carol.post(path, json=body)
        assert answer.status_code == 403 and "overrideGroups" in answer.json()["detail"]
    as_carol = front.state.clients.as_user("carol", ["platform"])
    data = (await stored()).to_wire()
    data["status"] = {
        "overrides": [
            {
                "application": "team-a/held",
                "by": "carol",
                "reason": "x",
                "at": "2026-01-01T00:00:00Z",
                "until": "2099-01-01T00:00:00Z",
            }
        ]
    }
    with pytest.raises(ApiError) as refused:
        await as_carol.replace(
            APPROVAL_POLICY.Status.from_dict(data), "release-freeze", namespace="team-a"
        )
    assert refused.value.status.code == 403
    assert hold_for(await stored()) is not None

    async with front.as_user("erin") as erin:
        answer = await erin.post(path, json={**body, "reason": ""})
        assert answer.status_code == 422
        answer = await erin.post(path, json={**body, "duration": "3d"})
        assert answer.status_code == 422
        answer = await erin.post(path, json=body)
        assert answer.status_code == 200, answer.text
    policy = await stored()
    assert [(o.application, o.by, o.reason) for o in policy.status.overrides] == [
        ("team-a/held", "erin", "INC-42 hotfix")
    ]
    assert hold_for(policy) is None
    rows = front.state.audit.search(action="override_window", limit=10)
    assert [(r["actor"], r["result"]) for r in rows] == [
        ("alice", 403),
        ("carol", 403),
        ("erin", 422),
        ("erin", 422),
        ("erin", 200),
    ]
    assert "INC-42 hotfix" in rows[-1]["detail"] and "until" in rows[-1]["detail"]
