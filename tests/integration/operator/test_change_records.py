"""Change records through a real ITSM webhook receiver: a provision opens one signed
ticket before its first step and closes it with the outcome when it ends, the ticket id
is on the FlowRun and in the Application's ChangeRecord condition; a failing ITSM blocks
the flow before anything is created in a member cluster, saying why."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import codecs
from lightkube.resources.apps_v1 import StatefulSet
from tests.itsm_receiver import Receiver

from milkyway.kube.resources import FLOWRUN

from .conftest import ensure_namespace

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
KEY = b"itsm-shared-secret-0123"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(KEY).start()
    try:
        yield started
    finally:
        started.stop()


async def configure(world: Any, url: str, failure_policy: str = "") -> None:
    await ensure_namespace(world.mgmt, "milkyway-system")
    data = {"url": url.encode(), "key": KEY}
    if failure_policy:
        data["failurePolicy"] = failure_policy.encode()
    await world.mgmt.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "milkyway-itsm", "namespace": "milkyway-system"},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            }
        )
    )


def _condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


async def _runs(world: Any) -> list[dict[str, Any]]:
    return [r.to_dict() async for r in world.mgmt.list(FLOWRUN, namespace="etcd-demo")]


async def _statefulsets(world: Any) -> list[Any]:
    found = []
    for member in world.members.values():
        found += [s async for s in member.list(StatefulSet, namespace="etcd-demo")]
    return found


async def test_a_provision_opens_and_closes_one_change_record(
    world: Any, receiver: Receiver
) -> None:
    await configure(world, receiver.url)
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def closed() -> bool:
            app = await world.application("etcd-demo", "config-store")
            return _condition(app, "ChangeRecord").get("reason") == "Closed"

        try:
            await world.eventually(closed, within=120, what="the change record closed")
        except AssertionError:
            print(await world.story("etcd-demo", "config-store"), receiver.calls)
            raise
    (run,) = await _runs(world)
    name = run["metadata"]["name"]
    assert run["status"]["phase"] == "Succeeded"
    ticket = run["status"]["nodes"]["change-open"]["outputs"]["ticket"]
    assert ticket == "CHG1000"
    assert all(c["signed"] for c in receiver.calls)
    assert receiver.distinct("open") == {f"etcd-demo/{name}/{run['metadata']['uid']}/open"}
    assert receiver.distinct("close") == {f"etcd-demo/{name}/{run['metadata']['uid']}/close"}
    (opened,) = receiver.events("open")
    assert opened["application"] == "config-store" and opened["operation"] == "provision"
    (closing,) = receiver.events("close")
    assert closing["ticket"] == ticket and closing["outcome"] == "succeeded"
    message = _condition(await world.application("etcd-demo", "config-store"), "ChangeRecord")
    assert f"{ticket} of {name} closed: succeeded" == message["message"]
    # The opening came before the flow's first step: the run's first steps waited for it.
    nodes = run["status"]["nodes"]
    first = min(
        (n for p, n in nodes.items() if p and "." not in p and not p.startswith("change-")),
        key=lambda n: n.get("startedAt") or 1e18,
    )
    assert nodes["change-open"]["finishedAt"] <= first["startedAt"]


async def test_a_failing_itsm_blocks_the_flow_before_it_touches_anything(
    world: Any, receiver: Receiver
) -> None:
    receiver.failing = True
    await configure(world, receiver.url)
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def blocked() -> dict[str, Any] | None:
            app = await world.application("etcd-demo", "config-store")
            found = _condition(app, "ChangeRecord")
            return found if found.get("reason") == "OpenFailed" else None

        try:
            found = await world.eventually(blocked, within=120, what="the flow blocked")
        except AssertionError:
            print(await world.story("etcd-demo", "config-store"), receiver.calls)
            raise
        assert "the change record could not be opened" in found["message"]
        assert "answered 500" in found["message"] and "no step of the flow ran" in found["message"]
        assert await _statefulsets(world) == []
    runs = await _runs(world)
    failed = [r for r in runs if r["status"]["phase"] == "Failed"]
    assert failed
    for run in failed:
        nodes = run["status"]["nodes"]
        assert nodes["change-open"]["phase"] == "Failed"
        touched = [
            p
            for p, n in nodes.items()
            if p
            and not p.startswith(("change-", "finally."))
            and n.get("phase") not in ("Omitted", "Pending", None)
        ]
        assert touched == [], touched
        # Nothing was opened, so the closing step had nothing to close.
        assert nodes["finally.change-close"]["outputs"] == {"closed": False}
    assert receiver.events("close") == []


async def test_a_failing_itsm_only_warns_when_configured_so(world: Any, receiver: Receiver) -> None:
    receiver.failing = True
    await configure(world, receiver.url, failure_policy="warn")
    doc = yaml.safe_load((EXAMPLES / "etcd.yaml").read_text())
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(doc)

        async def provisioned() -> dict[str, Any] | None:
            app = await world.application("etcd-demo", "config-store")
            found = _condition(app, "ChangeRecord")
            done = bool(await _statefulsets(world)) and found.get("reason") == "NoTicket"
            return found if done else None

        found = await world.eventually(provisioned, within=120, what="provisioned, warned")
    assert "no change record: the ITSM webhook" in found["message"]
    assert "answered 500" in found["message"]
    assert receiver.events("close") == []
