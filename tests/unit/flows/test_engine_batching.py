"""Events that arrive while a status is being written are applied together and written
once: members finishing at once cost one write, and no write shows them half done."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from milkyway.flows.dsl import Catalog, load_flows
from milkyway.flows.engine import Engine
from milkyway.flows.store import MemoryStore
from milkyway.flows.tasks import REGISTRY, TaskContext, TaskRegistry
from milkyway.model.flow import FlowRun

FLOWS = """
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {name: fan-out}
spec:
  steps:
    - name: each
      forEach: [1, 2, 3, 4]
      action: batch.instant
      strategy: {parallelism: 4}
"""


class RecordingStore(MemoryStore):
    """Keeps, for every status write, how many fan-out members it shows Succeeded."""

    def __init__(self) -> None:
        super().__init__()
        self.succeeded: list[int] = []

    async def replace_status(self, run: FlowRun) -> FlowRun:
        self.succeeded.append(
            sum(
                1
                for path, node in run.status.nodes.items()
                if path.startswith("each[") and node.phase == "Succeeded"
            )
        )
        return await super().replace_status(run)


def _registry() -> TaskRegistry:
    registry = REGISTRY.copy()

    @registry.task("batch.instant")
    async def instant(params: BaseModel, ctx: TaskContext) -> dict[str, Any]:
        return {}

    return registry


async def test_members_finishing_together_are_written_once() -> None:
    store = RecordingStore()
    catalog = Catalog(load_flows(FLOWS))
    async with Engine(store, catalog, registry=_registry(), poll_interval=0.05) as engine:
        name = await engine.submit("fan-out")
        run = await engine.wait(name, within=30)

    assert run.status.phase == "Succeeded"
    assert sorted(set(store.succeeded)) == [0, 4], (
        f"members finishing at once went to the store one by one: {store.succeeded}"
    )
    assert engine.transitions > store.succeeded.count(4), "several events per write"
