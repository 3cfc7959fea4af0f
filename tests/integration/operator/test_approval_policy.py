"""The operator puts an ApprovalPolicy's gate in front of the flow it starts: nothing is
created in a member cluster until the gate passes, the Application's ApprovalPending
condition says who must approve and until when; the user milkyway server stamped as the
one who changed the Application is the run's requester and cannot approve it; another
approver's signed decision lets it go on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from lightkube.resources.apps_v1 import StatefulSet

from milkyway.flows.engine import add_request
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.decision_key import decision_key
from milkyway.kube.resources import APPLICATION, APPROVAL_POLICY, FLOWRUN
from milkyway.operator.health.schedule import FLOW as HEALTH_FLOW
from milkyway.security.change_stamp import stamp

from .conftest import ensure_namespace

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GATE = "approval-prod-provision"

POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "prod-provision", "namespace": "milkyway-system"},
    "spec": {
        "match": {"operations": ["provision"], "selector": {"matchLabels": {"env": "prod"}}},
        "approvals": {"users": ["bob", "carol"], "groups": ["sre"], "timeout": "2h"},
    },
}


def _condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


async def test_a_policy_gates_provisioning_until_approved(world: Any) -> None:
    await world.mgmt.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    doc["metadata"]["labels"] = {"env": "prod"}
    # Changed by bob through milkyway server (its stamp): the run names bob as requester.
    key = await decision_key(world.mgmt)
    doc["metadata"]["annotations"] = stamp(key, "bob", "etcd-demo", "config-store", doc["spec"], {})
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def gated_run() -> str | None:
            async for run in world.mgmt.list(FLOWRUN, namespace="etcd-demo"):
                data = run.to_dict()
                node = ((data.get("status") or {}).get("nodes") or {}).get(GATE) or {}
                if node.get("phase") == "Waiting":
                    return data["metadata"]["name"]
            return None

        await world.eventually(gated_run, within=60, what="a provision run waiting at its gate")
        name = await gated_run()
        assert name is not None

        async def pending() -> bool:
            app = await world.application("etcd-demo", "config-store")
            return _condition(app, "ApprovalPending").get("status") == "True"

        await world.eventually(pending, within=30, what="ApprovalPending on the Application")
        message = _condition(
            await world.application("etcd-demo", "config-store"), "ApprovalPending"
        )["message"]
        assert name in message and GATE in message and "until" in message
        assert "bob, carol, group:sre" in message
        for member in world.members.values():
            sets = [s async for s in member.list(StatefulSet, namespace="etcd-demo")]
            assert sets == [], "nothing may be created before the approval"

        store = KubeStore(world.mgmt, "etcd-demo")
        assert (await store.get(name)).spec.requested_by == "bob"
        # Signed as the server would: bob asked for the change, so even signed he is refused.
        await add_request(store, name, "approve", "bob", step=GATE, decision_key=key)

        async def refused() -> bool:
            return "requested this run" in (await store.get(name)).status.message

        await world.eventually(refused, within=30, what="the requester refused")
        await add_request(store, name, "approve", "carol", step=GATE, decision_key=key)

        async def provisioned() -> bool:
            app = await world.application("etcd-demo", "config-store")
            sets = []
            for member in world.members.values():
                sets += [s async for s in member.list(StatefulSet, namespace="etcd-demo")]
            return bool(sets) and _condition(app, "ApprovalPending").get("status") == "False"

        try:
            await world.eventually(provisioned, within=120, what="provisioned after approval")
        except AssertionError:
            print(await world.story("etcd-demo", "config-store"))
            raise
        run = (await world.mgmt.get(FLOWRUN, name, namespace="etcd-demo")).to_dict()
        assert run["status"]["nodes"][GATE]["decision"]["by"] == "carol"
        assert run["spec"]["gates"][0]["approval"]["policy"] == "milkyway-system/prod-provision"


async def test_a_freeze_holds_a_flow_until_it_ends(world: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(seconds=12)
    freeze = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": "freeze", "namespace": "etcd-demo"},
        "spec": {
            "match": {"operations": ["provision"]},
            "freezes": [
                {
                    "start": (now - timedelta(hours=1)).isoformat(),
                    "end": end.isoformat(),
                    "reason": "release day",
                }
            ],
        },
    }
    await ensure_namespace(world.mgmt, "etcd-demo")
    await world.mgmt.create(APPROVAL_POLICY.from_dict(freeze), namespace="etcd-demo")
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def held() -> bool:
            app = await world.application("etcd-demo", "config-store")
            return _condition(app, "MaintenanceWindow").get("status") == "True"

        await world.eventually(held, within=30, what="the provision held by the freeze")
        app = await world.application("etcd-demo", "config-store")
        message = _condition(app, "MaintenanceWindow")["message"]
        assert end.strftime("%Y-%m-%dT%H:%M:%SZ") in message and "release day" in message
        assert [r async for r in world.mgmt.list(FLOWRUN, namespace="etcd-demo")] == []

        async def provisioned() -> bool:
            app = await world.application("etcd-demo", "config-store")
            sets = []
            for member in world.members.values():
                sets += [s async for s in member.list(StatefulSet, namespace="etcd-demo")]
            return bool(sets) and _condition(app, "MaintenanceWindow").get("status") == "False"

        await world.eventually(provisioned, within=90, what="provisioned once the freeze ended")
        runs = [r.to_dict() async for r in world.mgmt.list(FLOWRUN, namespace="etcd-demo")]
        created = [datetime.fromisoformat(r["metadata"]["creationTimestamp"]) for r in runs]
        assert created and min(created) >= end, (created, end)


async def test_a_rejected_change_is_not_asked_again_until_it_changes(world: Any) -> None:
    await world.mgmt.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    doc["metadata"]["labels"] = {"env": "prod"}
    key = await decision_key(world.mgmt)
    store = KubeStore(world.mgmt, "etcd-demo")

    async def waiting_runs() -> list[str]:
        names = []
        async for run in world.mgmt.list(FLOWRUN, namespace="etcd-demo"):
            data = run.to_dict()
            node = ((data.get("status") or {}).get("nodes") or {}).get(GATE) or {}
            if node.get("phase") == "Waiting":
                names.append(data["metadata"]["name"])
        return names

    async with world.operator(flow_retry_base=0.5, flow_retry_cap=1.0) as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)
        await world.eventually(waiting_runs, within=60, what="a gated provision run")
        first = (await waiting_runs())[0]
        await add_request(
            store, first, "reject", "carol", step=GATE, reason="not today", decision_key=key
        )

        async def rejected() -> bool:
            app = await world.application("etcd-demo", "config-store")
            return _condition(app, "ApprovalRejected").get("status") == "True"

        await world.eventually(rejected, within=60, what="ApprovalRejected")
        message = _condition(
            await world.application("etcd-demo", "config-store"), "ApprovalRejected"
        )["message"]
        assert "rejected by carol" in message and "not today" in message
        # Far beyond the retry back-off: the rejected change is not asked for again.
        await asyncio.sleep(4)
        # (The Application's scheduled health reports may run meanwhile: they change nothing.)
        names = [
            r.metadata.name
            async for r in world.mgmt.list(FLOWRUN, namespace="etcd-demo")
            if r.to_dict()["spec"].get("flow") != HEALTH_FLOW
        ]
        assert names == [first]

        # A change to the Application asks again.
        app = await world.application("etcd-demo", "config-store")
        app["spec"]["components"][0]["regions"][0]["zones"][0]["size"] = 3
        await world.mgmt.replace(APPLICATION.from_dict(app), namespace="etcd-demo")

        async def asked_again() -> bool:
            return any(n != first for n in await waiting_runs())

        await world.eventually(asked_again, within=60, what="a new gated run after the change")
