"""``replace-member`` decided by a member agent's critical disk checks again, right before
deleting anything, that the pod's DiskAlert condition still says so: a disk cleaned up
meanwhile keeps the member and its volume."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod

from milkyway.flows.tasks import TaskContext
from milkyway.kube.agent_contract import DISK_ALERT_CONDITION
from milkyway.operator.tasks.member import ReplaceParams, replace_member
from milkyway.sim.clusters import SimulatedClusters

SELECTOR = {"app": "zk"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    async with SimulatedClusters(["east"], kubeconfig_path=tmp_path / "kubeconfig") as sim:
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("east"))
        try:
            yield client
        finally:
            await client.close()


async def _member_with_disk(client: AsyncClient, reason: str) -> None:
    pod = Pod(
        metadata=ObjectMeta(name="zk-0", namespace="default", labels=SELECTOR),
        spec=PodSpec(containers=[Container(name="main", image="zookeeper:3.8")]),
    )
    await client.create(pod)
    condition = {"type": DISK_ALERT_CONDITION, "status": "False", "reason": reason}
    if reason != "Ok":
        condition["status"] = "True"
    await client.patch(
        Pod.Status, "zk-0", {"status": {"conditions": [condition]}}, namespace="default"
    )


async def test_a_disk_no_longer_critical_keeps_the_member(client: AsyncClient) -> None:
    await _member_with_disk(client, "Ok")
    ctx = TaskContext(
        run_id="run-1",
        step="replace",
        attempt=1,
        clients={"east": client},
        logger=logging.getLogger("test"),
    )
    params = ReplaceParams.model_validate(
        {
            "name": "zk-0",
            "cluster": "east",
            "selector": SELECTOR,
            "claim": "data-zk-0",
            "action": "replace-volume",
            "diskAlert": True,
            "timeout": 30,
        }
    )
    result = await replace_member(params, ctx)
    assert result == {"replaced": False, "reason": "its disk is no longer critical"}
    kept = await client.get(Pod, "zk-0", namespace="default")
    assert kept.metadata is not None and kept.metadata.deletionTimestamp is None
