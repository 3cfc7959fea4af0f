"""Fixtures for the flow engine against simulated clusters: CRDs installed, a KubeStore."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig, codecs

from milkyway.flows.kube_store import KubeStore
from milkyway.model.crds import all_crds
from milkyway.sim.clusters import SimulatedClusters

HERE = Path(__file__).parent


@dataclass
class FlowCluster:
    sim: SimulatedClusters
    client: AsyncClient
    store: KubeStore
    namespace: str = "default"

    def engine_command(self, *args: str) -> list[str]:
        """``milkyway flow engine`` in a separate Python process against cluster c1."""
        return [
            sys.executable,
            "-c",
            "from milkyway.cli.flow import app; app()",
            "engine",
            f"--kubeconfig={self.sim.kubeconfig_path}",
            "--context=c1",
            f"--namespace={self.namespace}",
            *args,
        ]

    async def cli(self, *args: str, check: bool = True) -> tuple[int, str]:
        """Run ``milkyway flow …`` as a subprocess (the simulator lives on this loop)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "flow",
            *args,
            f"--kubeconfig={self.sim.kubeconfig_path}",
            "--context=c1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = out.decode()
        if check and proc.returncode != 0:
            raise AssertionError(f"milkyway flow {' '.join(args)} failed:\n{text}")
        return proc.returncode or 0, text


async def install_flow_crds(client: AsyncClient) -> None:
    for crd in all_crds():
        if crd["spec"]["names"]["kind"] in ("Flow", "FlowRun"):
            await client.create(codecs.from_dict(crd))


@pytest.fixture
async def flow_cluster(sim: SimulatedClusters) -> AsyncIterator[FlowCluster]:
    client = AsyncClient(KubeConfig.from_file(sim.kubeconfig_path).get("c1"))
    await install_flow_crds(client)
    try:
        yield FlowCluster(sim, client, KubeStore(client, "default"))
    finally:
        await client.close()
