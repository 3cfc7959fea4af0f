"""Fixtures: simulated clusters whose kubelets run mapped images as real processes, and a
check after every test that no process they started is left running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from milkyway.sim.clusters import SimulatedClusters
from milkyway.sim.controllers.attach import ControlledClusters
from milkyway.sim.controllers.config import ControlPlaneConfig
from milkyway.sim.process import ImageMap, parse_run
from milkyway.sim.process.container import group_members

SHELL_IMAGE = "example.com/shell:1"
"""Mapped in these tests to ``sh -c``: the container's ``args`` are the script."""


@dataclass
class ProcessSim:
    sim: SimulatedClusters
    ctl: ControlledClusters

    def api(self, cluster: str = "east") -> Any:
        return self.sim[cluster].api

    def pod(self, name: str, cluster: str = "east", namespace: str = "default") -> dict[str, Any]:
        return self.ctl.planes[cluster].pods.get(namespace, name) or {}

    def status(self, name: str, cluster: str = "east", container: int = 0) -> dict[str, Any]:
        statuses = (self.pod(name, cluster).get("status") or {}).get("containerStatuses") or []
        return statuses[container] if len(statuses) > container else {}

    def runtime(self, cluster: str = "east") -> Any:
        runtime = self.sim[cluster].runtime
        assert runtime is not None
        return runtime

    def events(self, name: str, cluster: str = "east") -> list[dict[str, Any]]:
        return [
            e
            for e in self.api(cluster).list("v1/events")["items"]
            if e["involvedObject"].get("name") == name
        ]


async def eventually(check: Callable[[], Any], *, within: float = 60.0, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def shell_pod(name: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": SHELL_IMAGE, "args": [script]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"containers": [container], **spec},
    }


@pytest.fixture
async def process_sim(tmp_path: Path) -> AsyncIterator[ProcessSim]:
    images = ImageMap([parse_run(f"{SHELL_IMAGE}=sh -c")])
    config = ControlPlaneConfig.fast(crash_backoff=0.5)
    started: set[int] = set()
    async with (
        SimulatedClusters(["east", "west"], kubeconfig_path=tmp_path / "kubeconfig") as sim,
        ControlledClusters(
            sim,
            nodes=2,
            config=config,
            images=images,
            state_dir=tmp_path / "state",
            volume_sync_seconds=0.3,
        ) as ctl,
    ):
        try:
            yield ProcessSim(sim, ctl)
        finally:
            for runtime in ctl.runtimes.values():
                started |= runtime.started_groups
    leftovers = {g: group_members(g) for g in started if group_members(g)}
    assert not leftovers, f"processes left running after the simulator stopped: {leftovers}"
