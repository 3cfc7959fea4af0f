"""The operator drives FlowRuns and fires schedules in every namespace, not only where
its Applications live; a run no engine has claimed says what it waits for."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.resources import FLOW

from .conftest import ensure_namespace

pytestmark = pytest.mark.slow

HELLO = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: hello, namespace: adhoc}
spec:
  version: "1"
  steps:
    - name: nap
      action: sleep
      params: {seconds: 0.1}
"""

TICK = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: tick, namespace: timed}
spec:
  version: "1"
  schedule: {cron: "* * * * * */2"}
  steps:
    - name: nap
      action: sleep
      params: {seconds: 0.1}
"""


async def test_runs_and_schedules_outside_application_namespaces_are_driven(world: Any) -> None:
    for namespace in ("adhoc", "timed"):
        await ensure_namespace(world.mgmt, namespace)
    for text in (HELLO, TICK):
        (flow,) = load_flows(text)
        await world.mgmt.create(
            FLOW.from_dict(flow.model_dump(mode="json", by_alias=True, exclude_none=True)),
            namespace=flow.metadata.namespace,
        )
    adhoc = KubeStore(world.mgmt, "adhoc")
    run = new_run(Catalog(load_flows(HELLO)), None, "hello", namespace="adhoc")
    assert "milkyway flow engine -n adhoc" in run.status.message
    await adhoc.create(run)
    timed = KubeStore(world.mgmt, "timed")

    async with world.operator() as operator:
        await operator.wait_until_leading(10)

        async def hello_done() -> Any:
            stored = await adhoc.get(run.metadata.name)
            return stored if stored.status.phase == "Succeeded" else None

        done = await world.eventually(hello_done, within=60, what="the adhoc run Succeeded")
        assert done.status.message == "", "the claim cleared the 'waiting for an engine' note"

        async def ticked() -> bool:
            return any(r.status.phase == "Succeeded" for r in await timed.list())

        await world.eventually(ticked, within=60, what="a scheduled run in 'timed' Succeeded")
    fired = {r.spec.flow for r in await timed.list()}
    assert fired == {"tick"}
    assert not [r for r in await adhoc.list() if r.spec.flow == "tick"], "fired only once"
