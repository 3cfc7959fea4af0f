"""A flow held by a maintenance window starts when the window opens, with the operator's
clock driven by the test: outside the window the Application's MaintenanceWindow
condition says until when and no FlowRun exists; once the clock reaches the window the
provision starts at the next look."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from lightkube.resources.apps_v1 import StatefulSet

from milkyway.kube.resources import APPROVAL_POLICY, FLOWRUN
from milkyway.operator.manager import Operator

from .conftest import ensure_namespace, settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FRIDAY = datetime(2026, 12, 11, 21, 0, tzinfo=UTC)  # a Friday, an hour before the window
POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "weekend-only", "namespace": "etcd-demo"},
    "spec": {
        "match": {"operations": ["provision"]},
        "allowedIn": {"schedule": "0 22 * * 5", "duration": "2h", "timeZone": "UTC"},
    },
}


def _condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


async def test_a_held_flow_starts_when_the_window_opens(world: Any) -> None:
    now = [FRIDAY]
    await ensure_namespace(world.mgmt, "etcd-demo")
    await world.mgmt.create(APPROVAL_POLICY.from_dict(POLICY), namespace="etcd-demo")
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    operator = Operator(world.sim.kubeconfig_path, "mgmt", settings("op-a"), clock=lambda: now[0])
    async with operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def held() -> dict[str, Any] | None:
            app = await world.application("etcd-demo", "config-store")
            found = _condition(app, "MaintenanceWindow")
            return found if found.get("status") == "True" else None

        found = await world.eventually(held, within=60, what="the provision held")
        assert "waits until 2026-12-11T22:00:00Z" in found["message"]
        assert "outside the maintenance window of etcd-demo/weekend-only" in found["message"]
        # Operator time moves on, still outside; past a resync (5 s): nothing started.
        now[0] = FRIDAY + timedelta(minutes=59)
        await asyncio.sleep(7)
        assert [r async for r in world.mgmt.list(FLOWRUN, namespace="etcd-demo")] == []

        now[0] = FRIDAY + timedelta(hours=1, seconds=5)

        async def provisioned() -> bool:
            sets = []
            for member in world.members.values():
                sets += [s async for s in member.list(StatefulSet, namespace="etcd-demo")]
            app = await world.application("etcd-demo", "config-store")
            return bool(sets) and _condition(app, "MaintenanceWindow").get("status") == "False"

        await world.eventually(provisioned, within=120, what="provisioned in the window")
