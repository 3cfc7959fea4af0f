"""Stale-lock recovery on the Kubernetes store (locks are ConfigMaps there)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from milkyway.flows.engine import Engine
from milkyway.flows.kube_store import KubeStore

UNIT = Path(__file__).parents[2] / "unit" / "flows" / "test_engine_recovery.py"


def _scenarios() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flows_recovery_scenarios", UNIT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_lock_left_by_a_finished_run_is_released_on_kube(flow_cluster: Any) -> None:
    scenarios = _scenarios()
    store: KubeStore = flow_cluster.store

    def make_engine(store: Any) -> Engine:
        return Engine(
            store,
            scenarios.recovery_catalog(),
            registry=scenarios.recovery_registry(),
            poll_interval=0.05,
        )

    stuck, following = await scenarios.crash_before_lock_release(store, make_engine)
    assert following.status.phase == "Succeeded", following.status.message
    assert following.status.started_at >= stuck.status.finished_at
    assert await store.holders("component/zk") == []


async def test_a_lock_left_by_a_deleted_run_is_released_on_kube(flow_cluster: Any) -> None:
    scenarios = _scenarios()
    store: KubeStore = flow_cluster.store
    assert await store.acquire("component/zk", "deleted-run", 1)
    engine = Engine(
        store,
        scenarios.recovery_catalog(),
        registry=scenarios.recovery_registry(),
        poll_interval=0.05,
    )
    async with engine:
        run = await engine.wait(await engine.submit("locked"), 60)
    assert run.status.phase == "Succeeded", run.status.message
    assert await store.holders("component/zk") == []
