"""A flow that keeps failing is retried further and further apart, says why on its
Application, and leaves nothing behind once the Application is deleted.

The member cluster refuses the component's Service (its type, stored in the cluster, gives
two ports the same number: valid as a ComponentType, invalid as a Service — nothing local
validation can see), so every provision attempt fails at once. The back-off base is shortened to
two seconds through the operator's settings; the default is 30 s (at most a handful of
attempts in ten minutes)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from milkyway.cli.app_commands import APPLICATION
from milkyway.components import builtin_component_types

from .conftest import World

pytestmark = pytest.mark.slow

NS, APP = "backoff", "rejected"
DOCUMENT = f"""apiVersion: milkyway.ebay.com/v1
kind: Application
metadata:
  name: {APP}
  namespace: {NS}
spec:
  components:
    - name: zookeeper
      type: twinport
      version: "3.8.4"
      regions:
        - name: NA
          zones:
            - {{name: phx, size: 1}}
"""
BASE, CAP = 2.0, 16.0


def _twinport_type() -> str:
    """ZooKeeper's type under another name, with its peer port on the client port's number."""
    doc = builtin_component_types()["zookeeper"].model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    doc["metadata"] = {"name": "twinport"}
    for port in doc["spec"]["ports"]:
        if port["name"] == "peer":
            port["port"] = 2181
    return yaml.safe_dump(doc)


def _times(run: dict[str, Any]) -> tuple[float, float | None]:
    status = run.get("status") or {}
    return float(status.get("startedAt") or 0.0), status.get("finishedAt")


async def test_failing_flow_backs_off_and_is_deleted_with_its_application(
    clusters: World,
) -> None:
    world = clusters
    await world.apply(_twinport_type())
    await world.start_operator(flow_retry_base=BASE, flow_retry_cap=CAP)
    await world.apply(DOCUMENT)

    async def attempts() -> list[dict[str, Any]]:
        return [r for r in await world.runs(NS, APP) if (r.get("status") or {}).get("startedAt")]

    async def four_failed() -> bool:
        runs = await attempts()
        return sum(1 for r in runs if (r.get("status") or {}).get("phase") == "Failed") >= 4

    await world.wait_for(four_failed, "four failed attempts", within=90)

    async def failure_reported() -> bool:
        # The run's phase is written before the Application's status tells of it.
        status = (await world.app(NS, APP)).get("status") or {}
        found = [c for c in status.get("conditions") or [] if c["type"] == "FlowFailed"]
        return bool(found) and found[0]["status"] == "True"

    await world.wait_for(failure_reported, "the failure on the Application", within=30)
    obj = await world.app(NS, APP)
    failed = next(c for c in obj["status"]["conditions"] if c["type"] == "FlowFailed")
    assert failed["status"] == "True" and "422" in failed["message"], failed
    (failure,) = obj["status"]["failedFlows"]
    assert failure["component"] == "zookeeper" and failure["retryAt"], failure

    runs = sorted(await attempts(), key=lambda r: _times(r)[0])
    labels = [int(r["metadata"]["labels"]["milkyway.ebay.com/attempt"]) for r in runs]
    assert labels == list(range(1, len(runs) + 1)), labels
    gaps = []
    for before, after in itertools.pairwise(runs):
        finished = _times(before)[1]
        assert finished is not None
        gaps.append(_times(after)[0] - float(finished))
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= min(CAP, BASE * 2 ** (attempt - 1)), gaps
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    # 2 + 4 + 8 s of waiting before the fourth attempt: no more than that many so far.
    assert len(runs) <= 5, gaps

    await world.client.delete(APPLICATION, APP, namespace=NS)

    async def gone() -> bool:
        names = [a.metadata.name async for a in world.client.list(APPLICATION, namespace=NS)]
        return APP not in names and not await world.runs(NS, APP)

    await world.wait_for(gone, "the Application and its FlowRuns to go", within=90)
