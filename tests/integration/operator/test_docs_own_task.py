"""docs/operator-flows.md's task of one's own: the module loads with ``--tasks``, its
Flow checks against the operator's catalog, and the task answers on a real API server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Pod

from milkyway.cli.task_modules import import_task_modules
from milkyway.flows.dsl import Catalog, check_flow, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY
from milkyway.kube.clients import client_from_kubeconfig
from milkyway.operator.flows_catalog import build_catalog
from milkyway.sim.clusters import SimulatedClusters

DOC = Path(__file__).resolve().parents[3] / "docs" / "operator-flows.md"
SELECTOR = {"app": "broker"}


def _blocks() -> tuple[str, str]:
    text = DOC.read_text()
    section = text[text.index("### A task of your own") :]
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    flow = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert python and flow, "the example lost its python or yaml block"
    return python.group(1), flow.group(1)


CHECK = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: check-spread}
spec:
  version: "1"
  steps:
    - name: spread
      action: example.distinct-nodes
      params: {cluster: c1, namespace: brokers, selector: {app: broker}}
"""


async def test_the_documented_task_and_flow_work(tmp_path: Path) -> None:
    python, flow = _blocks()
    module = tmp_path / "spread_tasks.py"
    module.write_text(python)
    import_task_modules([str(module)])
    assert "example.distinct-nodes" in REGISTRY.names()
    catalog = build_catalog([], load_flows(flow), [])
    _, spec = catalog.get("spread-zone-apply")
    check_flow("spread-zone-apply", spec, REGISTRY, catalog)

    async with SimulatedClusters(["c1"], kubeconfig_path=tmp_path / "kubeconfig") as sim:
        client = client_from_kubeconfig(sim.kubeconfig_path, "c1")
        try:
            await client.create(Namespace(metadata=ObjectMeta(name="brokers")))
            for name, node in (("b-0", "n1"), ("b-1", "n2"), ("b-2", "n1")):
                await client.create(
                    Pod(
                        metadata=ObjectMeta(name=name, namespace="brokers", labels=SELECTOR),
                        spec=PodSpec(nodeName=node, containers=[Container(name="b", image="x")]),
                    )
                )
            store = MemoryStore()
            checks = Catalog(load_flows(CHECK))
            async with Engine(store, checks, clients={"c1": client}, poll_interval=0.05) as eng:
                shared = await eng.wait(await eng.submit("check-spread"), 30)
                await client.delete(Pod, "b-2", namespace="brokers", grace_period=0)
                spread = await eng.wait(await eng.submit("check-spread"), 30)
        finally:
            await client.close()
    assert shared.status.phase == "Failed"
    assert "members share node(s) n1" in (shared.status.nodes["spread"].message or "")
    assert spread.status.phase == "Succeeded", spread.status.message
    assert spread.status.nodes["spread"].outputs == {"nodes": ["n1", "n2"]}


def test_an_unknown_action_is_named_before_anything_runs() -> None:
    _, flow = _blocks()
    catalog = build_catalog([], load_flows(flow.replace("example.distinct-nodes", "x.nope")), [])
    _, spec = catalog.get("spread-zone-apply")
    with pytest.raises(Exception, match=r"x\.nope"):
        check_flow("spread-zone-apply", spec, REGISTRY, catalog)
