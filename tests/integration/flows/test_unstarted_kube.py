"""Runs left without a status by a stopped creator, on the Kubernetes store: the object
is created as the first of the two writes, and the second never comes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from milkyway.flows.kube_store import KubeStore
from milkyway.kube.resources import FLOWRUN
from milkyway.model.flow import FlowRun

UNIT = Path(__file__).parents[2] / "unit" / "flows" / "test_engine_unstarted.py"


def _scenarios() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flows_unstarted_scenarios", UNIT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _creator(flow_cluster: Any) -> Any:
    async def create_unstarted(run: FlowRun) -> None:
        body = run.model_dump(mode="json", by_alias=True, exclude_none=True)
        body.pop("status")
        body["metadata"] = {**run.metadata.to_wire(), "namespace": flow_cluster.namespace}
        await flow_cluster.client.create(FLOWRUN.from_dict(body))

    return create_unstarted


async def test_an_unstarted_run_is_started_with_its_locks_on_kube(flow_cluster: Any) -> None:
    store: KubeStore = flow_cluster.store
    await _scenarios().an_unstarted_run_is_started(store, _creator(flow_cluster))


async def test_an_unstarted_run_of_an_unknown_flow_fails_on_kube(flow_cluster: Any) -> None:
    store: KubeStore = flow_cluster.store
    await _scenarios().an_unstarted_run_of_an_unknown_flow_fails(store, _creator(flow_cluster))


class _OvertakenStore(KubeStore):
    """A store whose creator is overtaken: an engine writes the run's first status
    between the creator's two writes, so the creator's status write conflicts."""

    overtaken = 0

    async def replace_status(self, run: FlowRun) -> FlowRun:
        if not self.overtaken and run.metadata.resource_version:
            self.overtaken += 1
            await super().replace_status(run)
        return await super().replace_status(run)


async def test_a_creator_overtaken_by_an_engine_gets_the_started_run(flow_cluster: Any) -> None:
    scenarios = _scenarios()
    store = _OvertakenStore(flow_cluster.client, flow_cluster.namespace)
    run = scenarios.planned_run()
    stored = await store.create(run)
    assert store.overtaken == 1
    assert stored.status.snapshot == run.status.snapshot
    assert stored.spec.locks == ["1:component/zk"]
