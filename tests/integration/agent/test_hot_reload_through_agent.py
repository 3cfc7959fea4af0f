"""The config-update flow's hot-reload step, run against a real agent process in a
simulated pod: it waits until the pod sees the new ConfigMap files, runs the type's
``configReloadAction`` through ``pods/proxy`` with a signed token, and checks that the
agent applied exactly that version; a reload the software rejects fails the step with
the agent's own message."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import ConfigMap, Pod
from tests.polling import eventually

from milkyway.flows.tasks import FatalError, TaskContext
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import (
    AGENT_CONFIG_DIR,
    AGENT_CONFIG_FILE,
    AGENT_KEYS_DIR,
    AGENT_KEYS_SECRET,
)
from milkyway.kube.agent_keys import ensure_signing_key
from milkyway.kube.labels import CONFIG_HASH
from milkyway.operator.tasks.zone import RELOAD_ANNOTATION, ReloadZoneParams, reload_zone
from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap, parse_run
from milkyway.sim.process.container import group_members

NS = "default"
SHELL = "example.com/shell:1"
SELECTOR = {"app": "reloadable"}
AGENT = {
    "actions": [
        {
            "name": "reload-config",
            "command": [
                "sh",
                "-c",
                f'grep -q "^ok" {AGENT_CONFIG_DIR}/app.conf || '
                '{ echo "app.conf: bad setting" >&2; exit 3; }; '
                f"cat {AGENT_CONFIG_DIR}/app.conf",
            ],
        }
    ],
    "configReloadAction": "reload-config",
}


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    images = ImageMap([parse_run(f"{SHELL}=sh -c")])
    started: set[int] = set()
    async with (
        SimulatedClusters(["east"], kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(
            sim,
            nodes=1,
            config=ControlPlaneConfig.fast(crash_backoff=0.5),
            images=images,
            state_dir=tmp_path / "state",
            volume_sync_seconds=0.3,
        ) as ctl,
    ):
        client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("east"))
        try:
            yield client
        finally:
            await client.close()
            for runtime in ctl.runtimes.values():
                started |= runtime.started_groups
    leftovers = {g: group_members(g) for g in started if group_members(g)}
    assert not leftovers, f"processes left running: {leftovers}"


def _config_map(setting: str, config_hash: str) -> ConfigMap:
    return ConfigMap.from_dict(
        {
            "metadata": {
                "name": "reloadable-config",
                "namespace": NS,
                "labels": SELECTOR,
                "annotations": {CONFIG_HASH: config_hash},
            },
            "data": {"app.conf": setting + "\n", AGENT_CONFIG_FILE: json.dumps(AGENT)},
        }
    )


def _pod() -> Pod:
    field = {"fieldRef": {"fieldPath": "metadata.name"}}
    env = [
        {"name": "MILKYWAY_POD_NAME", "valueFrom": field},
        {
            "name": "MILKYWAY_POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "MILKYWAY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    return Pod.from_dict(
        {
            "metadata": {"name": "reloadable-0", "namespace": NS, "labels": SELECTOR},
            "spec": {
                "containers": [
                    {"name": "main", "image": SHELL, "args": ["exec sleep 100000"]},
                    {
                        "name": "milkyway-agent",
                        "image": "milkyway/agent:test",
                        "command": ["milkyway", "agent"],
                        "env": env,
                        "volumeMounts": [
                            {"name": "config", "mountPath": AGENT_CONFIG_DIR, "readOnly": True},
                            {"name": "agent-keys", "mountPath": AGENT_KEYS_DIR, "readOnly": True},
                            {"name": "agent-tmp", "mountPath": "/tmp"},
                        ],
                    },
                ],
                "volumes": [
                    {"name": "config", "configMap": {"name": "reloadable-config"}},
                    {"name": "agent-keys", "secret": {"secretName": AGENT_KEYS_SECRET}},
                    {"name": "agent-tmp", "emptyDir": {}},
                ],
            },
        }
    )


def _context(client: AsyncClient, run: str) -> TaskContext:
    return TaskContext(
        run_id=run,
        step="reload",
        attempt=1,
        clients={"east": client},
        logger=logging.getLogger("test"),
    )


def _params(config_hash: str) -> ReloadZoneParams:
    return ReloadZoneParams.model_validate(
        {
            "cluster": "east",
            "namespace": NS,
            "selector": SELECTOR,
            "configMapHash": config_hash,
            "timeout": 90,
            "interval": 0.3,
        }
    )


async def test_reload_runs_the_agents_action_and_waits_for_the_version(
    cluster: AsyncClient,
) -> None:
    await ensure_signing_key(cluster, NS)
    await cluster.apply(_config_map("ok v1", "h1"), field_manager="test", force=True)
    await cluster.create(_pod())
    agent = AgentClient(cluster, NS, "reloadable-0")

    async def answering() -> dict[str, Any] | None:
        try:
            return await agent.status()
        except AgentError:
            return None

    first = await eventually(answering, within=90, interval=0.3, what="the agent answers")
    assert first["config"]["current"] == first["config"]["applied"]

    await cluster.apply(_config_map("ok v2", "h2"), field_manager="test", force=True)
    result = await reload_zone(_params("h2"), _context(cluster, "run-1"))
    assert [r["ran"] for r in result["reloaded"]] == [True]
    status = await agent.status()
    assert status["config"]["applied"] == status["config"]["current"]
    assert status["config"]["applied"] == result["reloaded"][0]["applied"]
    assert status["config"]["applied"] != first["config"]["applied"]
    pod = await cluster.get(Pod, "reloadable-0", namespace=NS)
    assert (pod.metadata.annotations or {})[RELOAD_ANNOTATION] == "h2"

    again = await reload_zone(_params("h2"), _context(cluster, "run-1"))
    assert again == {"signalled": [], "reloaded": []}

    await cluster.apply(_config_map("broken v3", "h3"), field_manager="test", force=True)
    with pytest.raises(FatalError) as failed:
        await reload_zone(_params("h3"), _context(cluster, "run-2"))
    assert "reload-config failed (exit code 3)" in str(failed.value)
    assert "app.conf: bad setting" in str(failed.value)
    after = await agent.status()
    assert after["config"]["applied"] == status["config"]["applied"]
    assert after["config"]["current"] != after["config"]["applied"]
    pod = await cluster.get(Pod, "reloadable-0", namespace=NS)
    assert (pod.metadata.annotations or {})[RELOAD_ANNOTATION] == "h2"
