"""A provision that can never finish fails with its reason once no member has become
Ready for the progress deadline, and deleting its Application cancels it rather than
waiting for it."""

from __future__ import annotations

from typing import Any

from lightkube.resources.core_v1 import Event

from milkyway.cli.app_commands import APPLICATION

from .conftest import World

NS = "stuck"


def _document(name: str, deadline: int | None) -> str:
    annotations = (
        f'  annotations: {{milkyway.ebay.com/progress-deadline: "{deadline}"}}\n'
        if deadline
        else ""
    )
    return f"""apiVersion: milkyway.ebay.com/v1
kind: Application
metadata:
  name: {name}
  namespace: {NS}
{annotations}spec:
  components:
    - name: zookeeper
      version: "3.8.4"
      resources: {{cpu: "500"}}
      regions:
        - name: NA
          zones:
            - {{name: phx, size: 1}}
"""


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


async def test_unschedulable_provision_fails_with_its_reason_and_deletion_preempts_it(
    clusters: World,
) -> None:
    world = clusters
    await world.start_operator(flow_retry_base=120.0)
    await world.apply(_document("nofit", 3))

    async def failed() -> dict[str, Any] | None:
        obj = await world.app(NS, "nofit")
        return obj if _condition(obj, "FlowFailed").get("status") == "True" else None

    obj = await world.wait_for(failed, "the provision to fail", within=60)
    message = _condition(obj, "FlowFailed")["message"]
    assert "no member became Ready for 3s" in message, message
    assert "Unschedulable" in message and "cpu" in message, message
    (failure,) = obj["status"]["failedFlows"]
    assert failure["component"] == "zookeeper" and failure["retryAt"]

    await world.apply(_document("forever", None))

    async def provisioning() -> bool:
        runs = await world.runs(NS, "forever")
        return any((r.get("status") or {}).get("phase") == "Running" for r in runs)

    await world.wait_for(provisioning, "the second provision to run", within=60)
    for name in ("nofit", "forever"):
        await world.client.delete(APPLICATION, name, namespace=NS)

    async def gone() -> bool:
        names = [a.metadata.name async for a in world.client.list(APPLICATION, namespace=NS)]
        return not names

    await world.wait_for(gone, "both Applications to be deleted", within=90)
    reasons = [
        e.reason
        async for e in world.client.list(Event, namespace=NS)
        if e.involvedObject and e.involvedObject.name == "forever"
    ]
    assert "FlowCancelling" in reasons and "FlowCancelled" in reasons, reasons
