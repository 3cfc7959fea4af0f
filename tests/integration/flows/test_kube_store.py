"""The engine on the Kubernetes store: FlowRuns, printer columns, Events, the CLI."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from milkyway import flows as flows_package
from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import Conflict
from milkyway.flows.tasks import REGISTRY

HERE = Path(__file__).parent
GATED = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: gated, namespace: default}
spec:
  description: change with a human in the loop
  steps:
    - name: prepare
      action: test.count-effect
      params: {key: "${{ run.id }}.prepare", delay: 0.01}
    - name: confirm
      approval: {users: [bob], timeout: 600}
    - name: apply
      action: test.count-effect
      params: {key: "${{ run.id }}.apply", delay: 0.01}
"""


def _load_tasks() -> None:
    if "test.count-effect" in REGISTRY:
        return
    spec = importlib.util.spec_from_file_location("flows_crash_tasks", HERE / "crash_tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _catalog() -> Catalog:
    return Catalog(load_flows((HERE / "crash_flows.yaml").read_text()))


async def test_runs_live_in_flowruns(flow_cluster: Any, kubectl: Any) -> None:
    _load_tasks()
    store = flow_cluster.store
    engine = Engine(store, _catalog(), clients={"c1": flow_cluster.client}, poll_interval=0.1)
    async with engine:
        name = await engine.submit("small", target="stream1/zookeeper", requested_by="alice")
        run = await engine.wait(name, 60)
    assert run.status.phase == "Succeeded"
    assert run.status.progress == "8/8"
    assert run.metadata.resource_version
    listed = await kubectl.run("get", "flowruns")
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "FLOW", "TARGET", "PHASE", "PROGRESS", "AGE"]
    assert row.split()[:5] == [name, "small", "stream1/zookeeper", "Succeeded", "8/8"]
    events = await kubectl.run(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "name"
    )
    assert events.stdout.strip(), "no Events recorded on the FlowRun"
    described = await kubectl.run("get", "events", "-o", "yaml")
    assert "RunSucceeded" in described.stdout

    stale = await store.get(name)
    changed = stale.status.model_copy(update={"message": "written by another engine"})
    await store.replace_status(stale.model_copy(update={"status": changed}))
    with pytest.raises(Conflict):
        await store.replace_status(stale)


async def test_cli_steers_a_run_through_the_cluster(flow_cluster: Any, kubectl: Any) -> None:
    _load_tasks()
    await kubectl.run("apply", "-f", "-", stdin=GATED)
    library = Path(flows_package.__file__).parent / "library" / "rolling-restart.yaml"
    applied = await kubectl.run("apply", "-f", "-", stdin=library.read_text())
    assert "flow.milkyway.ebay.com/rolling-restart created" in applied.stdout
    code, out = await flow_cluster.cli(
        "run", "gated", "--name", "change-1", "--target", "app/kafka", "--as", "alice"
    )
    assert "flowrun/change-1 created" in out
    catalog = _catalog()
    for flow in load_flows(GATED):
        catalog.add(flow)
    engine = Engine(
        flow_cluster.store, catalog, clients={"c1": flow_cluster.client}, poll_interval=0.1
    )
    async with engine:
        for _ in range(200):
            run = await flow_cluster.store.get("change-1")
            if run.status.nodes.get("confirm") and run.status.nodes["confirm"].phase == "Waiting":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the approval gate was never reached")
        await flow_cluster.cli("approve", "change-1", "confirm", "--as", "alice")
        for _ in range(100):
            run = await flow_cluster.store.get("change-1")
            if run.status.processed_requests:
                break
            await asyncio.sleep(0.05)
        assert "requested this run and may not approve" in run.status.message
        assert run.status.nodes["confirm"].phase == "Waiting"
        code, out = await flow_cluster.cli(
            "approve", "change-1", "nope", "--as", "bob", check=False
        )
        assert code == 1 and "no approval step 'nope'" in out
        await flow_cluster.cli("approve", "change-1", "confirm", "--as", "bob", "--reason", "ok")
        run = await engine.wait("change-1", 60)
    assert run.status.phase == "Succeeded"
    decision = run.status.nodes["confirm"].decision
    assert decision is not None and (decision.by, decision.reason) == ("bob", "ok")
    _, shown = await flow_cluster.cli("show", "change-1")
    assert "confirm" in shown and "approved by bob" in shown and "Succeeded" in shown
    _, listed = await flow_cluster.cli("list")
    assert "change-1" in listed and "gated" in listed


async def test_cli_runs_a_flow_locally(flow_cluster: Any) -> None:
    _, out = await flow_cluster.cli(
        "run",
        "small",
        "--local",
        "--name",
        "local-1",
        "--tasks",
        str(HERE / "crash_tasks.py"),
        "-f",
        str(HERE / "crash_flows.yaml"),
        "--as",
        "alice",
    )
    assert "flowrun/local-1 created" in out
    assert "Succeeded" in out and "8/8" in out
    run = await flow_cluster.store.get("local-1")
    assert run.status.phase == "Succeeded"
    assert run.spec.requested_by == "alice"
