"""Flow overrides (ComponentType shared step, Application operation) and a member cluster
cut off in the middle of an upgrade."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from milkyway.flows.dsl import load_flows
from milkyway.model.flow import Flow
from milkyway.operator.flows_catalog import build_catalog
from milkyway.telemetry import REGISTRY

from .conftest import Harness, application, component

DOCS = Path(__file__).resolve().parents[4] / "docs" / "operator-flows.md"

MY_CONFIG_UPDATE = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata:
  name: announced-config-update
spec:
  version: "1"
  description: Announce, then run Milkyway's config update.
  parameters:
    application: {type: string}
    namespace: {type: string}
    component: {type: string}
    zones: {type: array}
    restart: {type: boolean, default: true}
    members: {type: array, default: []}
    parallelism: {type: integer, default: 1}
    maxDown: {type: integer, default: 1}
    alreadyDown: {type: integer, default: 0}
    gate: {type: object, default: {}}
  mutex: milkyway/${{ params.namespace }}/${{ params.application }}/${{ params.component }}
  steps:
    - name: announce
      action: notify
      params: {channel: ops, message: "config of ${{ params.component }} changes"}
    - name: update
      flow: milkyway-config-update
      params:
        application: ${{ params.application }}
        namespace: ${{ params.namespace }}
        component: ${{ params.component }}
        zones: ${{ params.zones }}
        restart: ${{ params.restart }}
        members: ${{ params.members }}
        parallelism: ${{ params.parallelism }}
        maxDown: ${{ params.maxDown }}
        alreadyDown: ${{ params.alreadyDown }}
        gate: ${{ params.gate }}
"""


def _docs_flow() -> list[Flow]:
    """The override example of docs/operator-flows.md, exactly as written there."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    flows = [f for block in blocks for f in load_flows(block) if block.startswith("apiVersion")]
    found = [f for f in flows if f.metadata.name == "kafka-member-health"]
    assert len(found) == 1, [f.metadata.name for f in flows]
    return found


def _succeeded(action: str) -> float:
    """Attempts of ``action`` that succeeded in this process so far (the engine's counter)."""
    labels = {"action": action, "outcome": "succeeded"}
    return REGISTRY.get_sample_value("milkyway_tasks_total", labels) or 0.0


def _with_overrides(harness: Harness) -> None:
    kafka = harness.types["kafka"]
    spec = kafka.spec.model_copy(update={"flows": {"member-health": "kafka-member-health"}})
    harness.types["kafka"] = kafka.model_copy(update={"spec": spec})
    harness.engine.catalog = build_catalog(
        harness.types.values(), [*_docs_flow(), *load_flows(MY_CONFIG_UPDATE)]
    )


async def test_type_step_override_and_application_operation_override(harness: Harness) -> None:
    _with_overrides(harness)
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 1}),
            component(
                "kafka1",
                "1.1.0",
                {"phx": 2, "slc": 1},
                flows={"config-update": "announced-config-update"},
            ),
        ]
    )
    await harness.converge()
    harness.document["spec"]["components"][1]["version"] = "2.8.1"
    before = _succeeded("k8s.wait")

    upgrade = await harness.converge()

    assert [r.flow for r in upgrade] == ["milkyway-rolling-upgrade--kafka"]
    run = await harness.engine.store.get(harness.runs[-1][1])
    assert run.status.phase == "Succeeded"
    # The steps of each broker's succeeded restart are compacted out of the status; the
    # engine's task counter says how often the docs' in-sync wait ran.
    assert _succeeded("k8s.wait") - before == 3, "the docs' health step ran once per broker"

    harness.document["spec"]["components"][1]["params"] = {"heapMb": 2048}
    update = await harness.converge()
    assert [r.flow for r in update] == ["announced-config-update"]
    pods = await harness.pods("kafka1")
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods.values()} == {
        "2.8.1"
    }


async def test_upgrade_waits_for_a_cut_off_cluster_then_finishes(harness: Harness) -> None:
    harness.document = application(
        [
            component("zookeeper1", "3.4.7", {"phx": 1}),
            component("kafka1", "1.1.0", {"phx": 2, "slc": 2}),
        ]
    )
    await harness.converge()
    kafka = harness.tally("kafka1")
    kafka.reset()
    harness.document["spec"]["components"][1]["version"] = "2.8.1"
    converging = asyncio.create_task(harness.converge(within=120))

    await harness.until(
        lambda: any(
            not t.ready and t.labels.get("milkyway.ebay.com/zone") == "phx" for t in kafka.history
        )
    )
    fault = await harness.control.faults.cut_off("slc", mode="refuse")
    await asyncio.sleep(2.0)
    assert not converging.done(), "the flow waits for the cluster instead of failing"
    run_name = harness.runs[-1][1]
    run = await harness.engine.store.get(run_name)
    assert run.status.phase == "Running"
    await harness.control.faults.lift(fault.id)

    started = await converging
    assert [r.operation for r in started] == ["rolling-upgrade"]
    pods = await harness.pods("kafka1")
    assert {p["metadata"]["labels"]["app.kubernetes.io/version"] for p in pods.values()} == {
        "2.8.1"
    }
    assert kafka.max_down(4) <= 1
